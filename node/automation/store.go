package automation

import (
	"sync"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
)

// PolicyStore keeps the installed signed policy in the node's store, so automation runs after a restart with
// the WAN down. The node implements it on its Badger store (one key; EncodeSignedPolicy for the value).
type PolicyStore interface {
	// LoadPolicy returns the stored policy, or nil and no error when there is none.
	LoadPolicy() (*SignedPolicy, error)
	// SavePolicy replaces the stored policy durably before it is applied.
	SavePolicy(*SignedPolicy) error
}

// MemoryPolicyStore is an in-memory PolicyStore (tests, combined-mode demos).
type MemoryPolicyStore struct {
	mu sync.Mutex
	sp *SignedPolicy
	// Err, when set, fails every call (fault injection).
	Err error
}

// LoadPolicy implements PolicyStore.
func (m *MemoryPolicyStore) LoadPolicy() (*SignedPolicy, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.sp, m.Err
}

// SavePolicy implements PolicyStore.
func (m *MemoryPolicyStore) SavePolicy(sp *SignedPolicy) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.Err != nil {
		return m.Err
	}
	m.sp = sp
	return nil
}

// Auditor records automatic actions. The node appends each record to its audit log and forwards it toward
// the cloud as an EVENT_KIND_RULE_FIRED event (RuleFiredEvent), spooled while the WAN is down, so the cloud's
// audit is whole after reconnect. Audit is called inside Receive: it must not block.
type Auditor interface {
	Audit(rec *pb.AuditRecord)
}

// AuditorFunc adapts a function to Auditor.
type AuditorFunc func(*pb.AuditRecord)

// Audit implements Auditor.
func (f AuditorFunc) Audit(rec *pb.AuditRecord) { f(rec) }

// AuditRecord is the audit record of one automatic action: actor "automation:<rule id>", local origin. Code
// is RUNNING for commands and curtailment events (dispatched; their per-miner results follow as usual) and
// UNSPECIFIED for notices.
func AuditRecord(nodeID string, a Action, now time.Time) *pb.AuditRecord {
	code := pb.ResultCode_RESULT_CODE_RUNNING
	if a.Kind == ActNotify {
		code = pb.ResultCode_RESULT_CODE_UNSPECIFIED
	}
	return &pb.AuditRecord{
		CommandId:   a.ID,
		Actor:       "automation:" + a.RuleID,
		MinerIds:    append([]string(nil), a.MinerIDs...),
		Code:        code,
		Message:     a.RuleKind + " " + a.Name + ": " + a.Message,
		AtUnixMs:    now.UnixMilli(),
		LocalOrigin: true,
		NodeId:      nodeID,
	}
}

// RuleFiredEvent wraps an automation audit record as the event the node sends toward the cloud.
func RuleFiredEvent(rec *pb.AuditRecord) *pb.Event {
	e := &pb.Event{EventId: rec.GetCommandId(), Kind: pb.EventKind_EVENT_KIND_RULE_FIRED, Message: rec.GetMessage(),
		AtUnixMs: rec.GetAtUnixMs(), Audit: rec}
	if len(rec.GetMinerIds()) == 1 {
		e.MinerId = rec.GetMinerIds()[0]
	}
	return e
}
