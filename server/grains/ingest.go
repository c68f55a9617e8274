package grains

import (
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/server/store"
	"google.golang.org/protobuf/proto"
)

// Pure ingest decisions: given what the org knows about each miner and a node's batch, what to apply. The Org
// actor gathers the inputs, calls these, persists the plan and fans it out.

// Ingest results, used as metric labels.
const (
	resApplied  = "applied"
	resStale    = "stale"    // older than the sample already known for the miner
	resUnowned  = "unowned"  // the miner belongs to another node, or to none and the node is not trusted
	resUnpaired = "unpaired" // a discovered device no operator has paired yet
	resInvalid  = "invalid"  // no usable miner id
	resIgnored  = "ignored"  // an event kind the cloud does not act on yet
)

// known is what the org knows about one miner.
type known struct {
	device     *pb.Device
	observedMs int64 // observed_at of the latest applied sample
	// ref is the org's own entry for the miner, handed back in the plan so the org does not look it up
	// again (nil in decision tests).
	ref *orgDevice
}

type lookupFunc func(minerID string) (known, bool)

type telemetryPlan struct {
	apply []*pb.Telemetry // at most one sample per miner, the newest
	// src[i] is the index in the batch of apply[i], or -1 when the plan changed the sample (it had no
	// observed time), so that the bytes the node sent no longer encode it.
	src []int
	// refs[i] is the org's entry for apply[i]'s miner (known.ref); nil for a miner the batch registers.
	refs []*orgDevice
	// history is every sample of an owned miner, older ones too (a spool replay): the history keeps them
	// all and drops its own duplicates.
	history    []*pb.Telemetry
	newDevices []*pb.Device
	counts     map[string]int
}

// planTelemetry decides which samples of a batch from node to apply. A sample is applied when its miner is
// owned by node (or unknown and trust is set, which registers the miner to node) and it is not older than
// the latest sample known. Samples without an observed time get now. Within a batch only the newest sample
// per miner is applied.
func planTelemetry(node string, samples []*pb.Telemetry, lookup lookupFunc, trust bool, now time.Time) telemetryPlan {
	p := telemetryPlan{counts: map[string]int{}, apply: make([]*pb.Telemetry, 0, len(samples)),
		src: make([]int, 0, len(samples)), refs: make([]*orgDevice, 0, len(samples)),
		history: make([]*pb.Telemetry, 0, len(samples))}
	newest := make(map[string]int, len(samples)) // miner → index into p.apply
	var fresh map[string]bool
	for j, s := range samples {
		id := s.GetMinerId()
		if store.ValidID(id) != nil {
			p.counts[resInvalid]++
			continue
		}
		src := j
		if s.ObservedAtUnixMs == 0 {
			s.ObservedAtUnixMs = now.UnixMilli()
			src = -1
		}
		k, ok := lookup(id)
		switch {
		case ok && k.device.GetNodeId() != node:
			p.counts[resUnowned]++
			continue
		case !ok && !trust:
			p.counts[resUnowned]++
			continue
		}
		p.history = append(p.history, s)
		switch {
		case ok && s.GetObservedAtUnixMs() < k.observedMs:
			p.counts[resStale]++
			continue
		case !ok && !fresh[id]:
			if fresh == nil {
				fresh = map[string]bool{}
			}
			fresh[id] = true
			p.newDevices = append(p.newDevices, &pb.Device{MinerId: id, NodeId: node, Model: s.GetModel(),
				Serial: s.GetSerial(), Mac: s.GetMac()})
		}
		if i, seen := newest[id]; seen {
			p.counts[resStale]++
			if s.GetObservedAtUnixMs() >= p.apply[i].GetObservedAtUnixMs() {
				p.apply[i], p.src[i] = s, src
			}
			continue
		}
		newest[id] = len(p.apply)
		p.apply = append(p.apply, s)
		p.src = append(p.src, src)
		p.refs = append(p.refs, k.ref)
	}
	p.counts[resApplied] = len(p.apply)
	return p
}

type eventsPlan struct {
	devices []*pb.Device // new or changed registrations
	pending []*pb.Device // discovered by an untrusted node, waiting for the operator to pair them
	audit   []*pb.AuditRecord
	isNew   map[string]bool
	states  []stateChange
	counts  map[string]int
	// nodeMetrics is the newest NODE_METRICS snapshot of the batch (nil: none).
	nodeMetrics *pb.NodeMetrics
	// scans are the batch's discovery scan reports, in order; the devices they found that no node owns are
	// in pending (discovery never claims ownership, trusted node or not).
	scans []*pb.ScanReport
	// curtail is the batch's last curtailment status (nil: none).
	curtail *pb.CurtailStatus
}

// planEvents decides what a batch of events from node changes. DISCOVERED registers the device to node when
// trust is set (or refreshes its address and identity when node already owns it), and otherwise records it
// as pending until an operator pairs it; STATE_CHANGE updates an owned miner's state; COMMAND_AUDIT keeps the
// node's gate audit record (stamped with the node the stream is authenticated as, whatever it claims);
// NODE_METRICS keeps the batch's newest process snapshot of the node. Other kinds are counted and ignored.
func planEvents(node string, events []*pb.Event, lookup lookupFunc, trust bool, now time.Time) eventsPlan {
	p := eventsPlan{isNew: map[string]bool{}, counts: map[string]int{}}
	overlay := map[string]int{} // miner → index into p.devices
	find := func(id string) (*pb.Device, bool) {
		if i, ok := overlay[id]; ok {
			return p.devices[i], true
		}
		k, ok := lookup(id)
		return k.device, ok
	}
	for _, ev := range events {
		switch ev.GetKind() {
		case pb.EventKind_EVENT_KIND_DISCOVERED:
			d := proto.Clone(orEmptyDevice(ev.GetDevice())).(*pb.Device)
			if d.MinerId == "" {
				d.MinerId = ev.GetMinerId()
			}
			if store.ValidID(d.MinerId) != nil {
				p.counts[resInvalid]++
				continue
			}
			d.NodeId = node
			cur, ok := find(d.MinerId)
			if ok && d.Site == "" && cur.GetNodeId() == node {
				d.Site = cur.GetSite() // a node does not report its site; the registration keeps it
			}
			switch {
			case ok && cur.GetNodeId() != node:
				p.counts[resUnowned]++
				continue
			case !ok && !trust:
				p.pending = append(p.pending, d)
				p.counts[resUnpaired]++
				continue
			case ok && proto.Equal(cur, d):
				p.counts[resApplied]++
				continue
			}
			if !ok {
				p.isNew[d.MinerId] = true
			}
			if i, seen := overlay[d.MinerId]; seen {
				p.devices[i] = d
			} else {
				overlay[d.MinerId] = len(p.devices)
				p.devices = append(p.devices, d)
			}
			p.counts[resApplied]++
		case pb.EventKind_EVENT_KIND_STATE_CHANGE:
			id := ev.GetMinerId()
			if store.ValidID(id) != nil {
				p.counts[resInvalid]++
				continue
			}
			if cur, ok := find(id); !ok || cur.GetNodeId() != node {
				p.counts[resUnowned]++
				continue
			}
			at := now
			if ms := ev.GetAtUnixMs(); ms > 0 {
				at = time.UnixMilli(ms)
			}
			p.states = append(p.states, stateChange{miner: id, state: ev.GetToState(), at: at})
			p.counts[resApplied]++
		case pb.EventKind_EVENT_KIND_CURTAIL:
			if ev.GetCurtail() == nil {
				p.counts[resInvalid]++
				continue
			}
			p.curtail = ev.GetCurtail()
			p.counts[resApplied]++
		case pb.EventKind_EVENT_KIND_COMMAND_AUDIT, pb.EventKind_EVENT_KIND_RULE_FIRED:
			a := ev.GetAudit()
			if a == nil {
				p.counts[resInvalid]++
				continue
			}
			a = proto.Clone(a).(*pb.AuditRecord)
			a.NodeId = node
			if a.AtUnixMs <= 0 {
				a.AtUnixMs = now.UnixMilli()
			}
			p.audit = append(p.audit, a)
			p.counts[resApplied]++
		case pb.EventKind_EVENT_KIND_SCAN:
			if !planScan(&p, node, ev.GetScan(), find) {
				p.counts[resInvalid]++
				continue
			}
			p.counts[resApplied]++
		case pb.EventKind_EVENT_KIND_LOCAL_COMMAND:
			// Recorded by Org.applyLocal (reconcile.go): once per command id, into the node's audit.
			if c := ev.GetLocalCommand(); c == nil || c.GetHlc() == nil || store.ValidID(c.GetCommandId()) != nil {
				p.counts[resInvalid]++
				continue
			}
			p.counts[resApplied]++
		case pb.EventKind_EVENT_KIND_NODE_METRICS:
			nm := ev.GetNodeMetrics()
			if nm == nil {
				p.counts[resInvalid]++
				continue
			}
			if p.nodeMetrics == nil || nm.GetAtUnixMs() >= p.nodeMetrics.GetAtUnixMs() {
				p.nodeMetrics = nm
			}
			p.counts[resApplied]++
		default:
			p.counts[resIgnored]++
		}
	}
	return p
}

func orEmptyDevice(d *pb.Device) *pb.Device {
	if d == nil {
		return &pb.Device{}
	}
	return d
}

// encoded returns the node's encoding of each sample to apply (nil entries where the plan changed the
// sample), or nil when the batch came without encodings.
func (p *telemetryPlan) encoded(batch [][]byte) [][]byte {
	if batch == nil {
		return nil
	}
	out := make([][]byte, len(p.apply))
	for i, j := range p.src {
		if j >= 0 && j < len(batch) {
			out[i] = batch[j]
		}
	}
	return out
}

// minerTelemetryDue decides whether a miner's Miner actor needs an applied sample: only one that changes
// the state the actor holds (told: it was sent anything) does; the fleet view gets every sample.
func minerTelemetryDue(told bool, held pb.MinerState, s *pb.Telemetry) bool {
	return !told || s.GetState() != held
}

// minerStateDue decides whether a STATE_CHANGE at atMs reaches a miner's Miner actor: not one older than
// the newest sample applied (observedMs), whose state stands.
func minerStateDue(observedMs, atMs int64) bool {
	return atMs >= observedMs
}
