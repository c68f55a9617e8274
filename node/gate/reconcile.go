package gate

import (
	"fmt"
	"slices"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/node/hlc"
)

// Reconciliation of cloud commands with local actions (local-degraded mode), by causal order and never by
// wall clock. The cloud stamps every command with the newest local-command HLC it had received from this
// node when it issued the command (ControlCommand.local_watermark). A local action on the same miner and
// field with an HLC above that watermark happened without the cloud knowing of it, so the cloud command may
// be stale: it is held (RESULT_CODE_CONFLICT) for the operator, except by these rules:
//
//   - safety actions (stop, curtail) are applied anyway: stopping a miner is never the wrong side of a race;
//   - a resume action (start, uncurtail, reboot) is held by a newer local action on the mining field or the
//     curtailment field: a start must not undo a local curtailment, nor an uncurtail a local stop;
//   - a cloud command asking exactly what the newer local action did (same action, same power target) runs:
//     both sides agree;
//   - reads and blink touch no field and always run.

// Field is the part of a miner's desired state an action sets.
type Field string

// Fields reconciled separately.
const (
	FieldMining      Field = "mining"      // start, stop, reboot
	FieldPower       Field = "power"       // power target
	FieldPools       Field = "pools"       // pool configuration
	FieldCurtailment Field = "curtailment" // curtail, uncurtail
)

// FieldOf is the field an action sets; ok is false for actions that set none (blink, reads).
func FieldOf(a pb.Action) (f Field, ok bool) {
	switch a {
	case pb.Action_ACTION_START_MINING, pb.Action_ACTION_STOP_MINING, pb.Action_ACTION_REBOOT:
		return FieldMining, true
	case pb.Action_ACTION_SET_POWER_TARGET:
		return FieldPower, true
	case pb.Action_ACTION_UPDATE_POOLS:
		return FieldPools, true
	case pb.Action_ACTION_CURTAIL, pb.Action_ACTION_UNCURTAIL:
		return FieldCurtailment, true
	}
	return "", false
}

// IsSafety reports whether a is a safety action (stop, curtail), applied whatever the local log says.
func IsSafety(a pb.Action) bool {
	return a == pb.Action_ACTION_STOP_MINING || a == pb.Action_ACTION_CURTAIL
}

// isResume reports whether a brings a miner back to hashing.
func isResume(a pb.Action) bool {
	return a == pb.Action_ACTION_START_MINING || a == pb.Action_ACTION_UNCURTAIL || a == pb.Action_ACTION_REBOOT
}

// LocalAction is the newest local action on one miner and field.
type LocalAction struct {
	CommandID string
	Actor     string
	Spec      *pb.CommandSpec
	HLC       *pb.HLC
}

// fieldsChecked are the fields a cloud action is checked against.
func fieldsChecked(a pb.Action) []Field {
	f, ok := FieldOf(a)
	if !ok {
		return nil
	}
	if isResume(a) {
		return []Field{FieldMining, FieldCurtailment}
	}
	return []Field{f}
}

// Held is one miner a cloud command does not run on, and why.
type Held struct {
	MinerID string
	Field   Field
	Local   LocalAction
}

// Overridden is one miner a cloud safety action runs on despite a newer local action.
type Overridden = Held

// Reconcile decides, per miner, whether a cloud command with spec and watermark runs: it returns the miners
// it runs on (in order), those it holds, and those a safety action runs on despite a newer local action.
// newest reports the newest local action on a miner and field. Pure: no clock, no I/O.
func Reconcile(spec *pb.CommandSpec, watermark *pb.HLC, miners []string, newest func(minerID string, f Field) (LocalAction, bool)) (run []string, held []Held, overridden []Overridden) {
	fields := fieldsChecked(spec.GetAction())
	if len(fields) == 0 {
		return slices.Clone(miners), nil, nil
	}
	for _, id := range miners {
		var conflict *Held
		for _, f := range fields {
			la, ok := newest(id, f)
			if !ok || hlc.Compare(la.HLC, watermark) <= 0 || sameIntent(la.Spec, spec) {
				continue
			}
			if conflict == nil || hlc.Compare(la.HLC, conflict.Local.HLC) > 0 {
				conflict = &Held{MinerID: id, Field: f, Local: la}
			}
		}
		switch {
		case conflict == nil:
			run = append(run, id)
		case IsSafety(spec.GetAction()):
			run = append(run, id)
			overridden = append(overridden, *conflict)
		default:
			held = append(held, *conflict)
		}
	}
	return run, held, overridden
}

// sameIntent reports whether a local action asked exactly what the cloud command asks.
func sameIntent(local, cloud *pb.CommandSpec) bool {
	if local.GetAction() != cloud.GetAction() {
		return false
	}
	switch cloud.GetAction() {
	case pb.Action_ACTION_SET_POWER_TARGET:
		return local.GetPowerTargetW() == cloud.GetPowerTargetW()
	case pb.Action_ACTION_UPDATE_POOLS, pb.Action_ACTION_REBOOT:
		return false // a pool set is compared by the operator; a reboot is an event, not a state
	}
	return true
}

// HeldMessage explains a held miner to the cloud and the operator.
func HeldMessage(h Held, watermark *pb.HLC) string {
	return fmt.Sprintf("held: local action while offline: %s on %s by %s at %s (local command %s) is newer than what the cloud knew when it issued this (%s); resolve it in the cloud (GET /api/v1/conflicts)",
		actionName(h.Local.Spec.GetAction()), h.Field, h.Local.Actor, hlc.Format(h.Local.HLC), h.Local.CommandID, watermarkText(watermark))
}

func watermarkText(w *pb.HLC) string {
	if w == nil {
		return "no local command"
	}
	return "local commands up to " + hlc.Format(w)
}

func actionName(a pb.Action) string {
	s := a.String()
	if len(s) > len("ACTION_") {
		return s[len("ACTION_"):]
	}
	return s
}
