package grains

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/messages/sealing"
	"github.com/hashfleet/hashfleet/server/lease"
	"github.com/hashfleet/hashfleet/server/store"
)

// Warm-standby pairs on the cloud side (docs/GATEWAY.md, "Warm-standby pairs"):
//
//	API ─DeclarePair─▶ Org: check (pure: checkPairDecl) → seal the pair key to both members → store
//	                    ├─spawn──▶ LeaseActor (server/lease, one per pair, child of the Org, Notify = Org)
//	                    └─setNodePair──▶ Node A, Node B ─HelloAck{pair}─▶ their live streams
//	node ─lease_request─▶ NodeSession ─▶ Node ─Request─▶ LeaseActor ─grant/denied─▶ Node ─▶ same stream
//	node ─HeartbeatPing─▶ Node ─lease.Heartbeat─▶ LeaseActor
//	LeaseActor ─HolderChanged─▶ Org: history; TRANSFER: grant ─▶ new holder's Node (unasked)
//	                             ├─withdrawPair──▶ old holder's Node: never-RUNNING commands come back
//	                             │                 (pairCommandsMoved), RUNNING ones end INTERRUPTED
//	                             └─enqueue (new seq, new epoch, re-signed) ─▶ new holder's Node
//	API ─IssueCommand(pair devices)─▶ Org ─▶ holder's Node (lease_epoch = epoch), or wait for a holder
//
// The Org owns the declarations and routing; the LeaseActor owns holder, epoch and expiry; the Node actor
// owns its queue, so it decides which of its queued commands were started (acked RUNNING, or at or below
// the seq mark the node reported in its hello) and which may move.

// PairKeyPurpose binds a pair key envelope (sealing purpose; the envelope's device id is the pair id).
const PairKeyPurpose = "pair-key"

// pairKeyLen is the pair key's size: a memberlist AES-256 keyring key.
const pairKeyLen = 32

// PairDeclaration is an operator's pair declaration.
type PairDeclaration struct {
	Site    string
	Members [2]string
	// Standby is the member that starts as the standby.
	Standby string
	// Devices both members will own (each registered and owned by one of the members).
	Devices []string
	// Actor is who declared it ("user:admin").
	Actor string
}

// PairStatus is a pair for the API and the UI.
type PairStatus struct {
	ID         string
	Site       string
	Members    [2]string
	Standby    string
	Devices    []string
	DeclaredBy string
	DeclaredAt time.Time
	// Holder, Epoch, ExpiresAt and Live are the lease on the cloud clock (Holder "": nobody holds it).
	Holder    string
	Epoch     uint64
	ExpiresAt time.Time
	Live      bool
	// Heard is when the cloud last heard each member (heartbeat or lease request; the lease grain's
	// activation counts as heard).
	Heard map[string]time.Time
	// GossipAddrs are the members' gossip addresses as they last reported them ("" unknown).
	GossipAddrs map[string]string
	Transfer    *store.PairTransfer
	History     []store.PairFailover
	AsOf        time.Time
}

// NodeRecordFunc returns a node's enrollment record; an error wrapping store.ErrNotFound when none.
type NodeRecordFunc func(nodeID string) (*pb.NodeRecord, error)

// --- messages ---

type declarePair struct{ decl PairDeclaration }
type deletePair struct{ id string }
type requestTransfer struct {
	id, to, actor string
}
type getPair struct{ id string }
type listPairs struct{}

// pairSnapshot answers getPair/listPairs: the Org's part of a PairStatus; the Fleet adds the lease's.
type pairSnapshot struct {
	rec    *store.PairRecord
	lease  *actor.PID
	gossip map[string]string
}

// setNodePair tells a Node actor its pair (info nil: it is in none).
type setNodePair struct {
	info    *pb.PairInfo
	lease   *actor.PID
	devices []*pb.Device
}

// nodeStarted: a Node actor (re)started and needs its pair, if any.
type nodeStarted struct{ node string }

// memberGossip: a node attached with this ControlHello.gossip_addr.
type memberGossip struct{ node, addr string }

// deliverGrant asks a Node actor to write an unasked grant on its live stream (TRANSFER).
type deliverGrant struct{ grant *pb.LeaseGrant }

// withdrawPair asks the old holder's Node actor to give up its queued commands for the pair's devices.
type withdrawPair struct {
	pairID   string
	devices  map[string]bool
	from, to string
	epoch    uint64
	failover bool
}

// pairCommandsMoved are the commands a Node gave back (never started there), for the new holder.
type pairCommandsMoved struct {
	pairID string
	cmds   []pairCommand
}

// pairCommand is an operator command's part for one pair, before it has a seq on a holder.
type pairCommand struct {
	commandID string
	actor     string
	minerIDs  []string
	spec      *pb.CommandSpec
	issuedAt  time.Time
}

// --- pure decisions ---

// newPairID makes a pair id: "p" + 16 hex digits.
func newPairID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "p" + hex.EncodeToString(b[:])
}

// pairRegistry is what checkPairDecl reads: enrollment records, device owners and existing pairs.
type pairRegistry struct {
	orgID        string
	record       func(node string) (*pb.NodeRecord, error)
	owner        func(miner string) (node string, ok bool)
	pairOfNode   func(node string) string
	pairOfDevice func(miner string) string
}

// checkPairDecl validates a declaration against the registry. Errors wrap ErrInvalidPair (malformed),
// ErrUnknownNode / ErrUnknownMiner (not found) or ErrPairConflict.
func checkPairDecl(d PairDeclaration, reg pairRegistry) error {
	a, b := d.Members[0], d.Members[1]
	switch {
	case a == "" || b == "":
		return fmt.Errorf("%w: members must name two nodes", ErrInvalidPair)
	case a == b:
		return fmt.Errorf("%w: members name node %s twice", ErrInvalidPair, a)
	case d.Standby != a && d.Standby != b:
		return fmt.Errorf("%w: standby %q is not one of the members", ErrInvalidPair, d.Standby)
	case d.Site == "":
		return fmt.Errorf("%w: site is required", ErrInvalidPair)
	case len(d.Devices) == 0:
		return fmt.Errorf("%w: devices is empty (a pair shares at least one device)", ErrInvalidPair)
	}
	for _, n := range d.Members {
		if err := store.ValidNodeID(n); err != nil {
			return fmt.Errorf("%w: member %q: %v", ErrInvalidPair, n, err)
		}
	}
	seen := map[string]bool{}
	for _, id := range d.Devices {
		if err := store.ValidID(id); err != nil {
			return fmt.Errorf("%w: device %q: %v", ErrInvalidPair, id, err)
		}
		if seen[id] {
			return fmt.Errorf("%w: device %s listed twice", ErrInvalidPair, id)
		}
		seen[id] = true
	}
	for _, n := range d.Members {
		rec, err := reg.record(n)
		switch {
		case err != nil:
			return fmt.Errorf("%w %s: %v", ErrUnknownNode, n, err)
		case rec.GetRevoked():
			return fmt.Errorf("%w: node %s is revoked", ErrPairConflict, n)
		case !rec.GetConfirmed():
			return fmt.Errorf("%w: node %s is not confirmed (its enrollment fingerprint was never confirmed)", ErrPairConflict, n)
		case rec.GetOrgId() != "" && rec.GetOrgId() != reg.orgID:
			return fmt.Errorf("%w: node %s belongs to org %s, not %s", ErrPairConflict, n, rec.GetOrgId(), reg.orgID)
		case rec.GetSite() != d.Site:
			return fmt.Errorf("%w: node %s is at site %q, not %q", ErrPairConflict, n, rec.GetSite(), d.Site)
		case len(rec.GetCredentialPublicKey()) == 0:
			return fmt.Errorf("%w: node %s has no credential key to seal the pair key to", ErrPairConflict, n)
		}
		if p := reg.pairOfNode(n); p != "" {
			return fmt.Errorf("%w: node %s is already in pair %s", ErrPairConflict, n, p)
		}
	}
	for _, id := range d.Devices {
		owner, ok := reg.owner(id)
		switch {
		case !ok:
			return fmt.Errorf("%w: %s (pair only registered devices)", ErrUnknownMiner, id)
		case owner != a && owner != b:
			return fmt.Errorf("%w: device %s is owned by node %s, not by a member", ErrPairConflict, id, owner)
		}
		if p := reg.pairOfDevice(id); p != "" {
			return fmt.Errorf("%w: device %s is already in pair %s", ErrPairConflict, id, p)
		}
	}
	return nil
}

// sealPairKey makes a fresh pair key and seals it to each member's credential key. The key is wiped
// before returning; only the envelopes leave.
func sealPairKey(pairID string, members [2]*pb.NodeRecord) (map[string][]byte, error) {
	key := make([]byte, pairKeyLen)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("pair key: %w", err)
	}
	defer sealing.Wipe(key)
	out := make(map[string][]byte, 2)
	for _, rec := range members {
		pub, err := sealing.ParsePublicKey(rec.GetCredentialPublicKey())
		if err != nil {
			return nil, fmt.Errorf("pair key for node %s: %w", rec.GetNodeId(), err)
		}
		env, err := sealing.Seal(pub, rec.GetNodeId(), pairID, PairKeyPurpose, key)
		if err != nil {
			return nil, fmt.Errorf("pair key for node %s: %w", rec.GetNodeId(), err)
		}
		b, err := env.MarshalBinary()
		if err != nil {
			return nil, fmt.Errorf("pair key for node %s: %w", rec.GetNodeId(), err)
		}
		out[rec.GetNodeId()] = b
	}
	return out, nil
}

// pairInfoFor builds the PairInfo member node receives.
func pairInfoFor(rec *store.PairRecord, node string, gossip map[string]string, holder string, epoch uint64) *pb.PairInfo {
	peer := rec.Members[0]
	if peer == node {
		peer = rec.Members[1]
	}
	return &pb.PairInfo{PairId: rec.ID, Members: rec.Members[:], PeerNodeId: peer, PeerGossipAddr: gossip[peer],
		PairKeyEnvelope: rec.KeyEnvelopes[node], Standby: rec.Standby == node, Epoch: epoch, Holder: holder}
}

// changeKind names a holder change for the pair's history.
func changeKind(hc *lease.HolderChanged) string {
	switch {
	case hc.To == "":
		return "release"
	case hc.Failover:
		return "failover"
	case hc.From != "":
		return "transfer"
	}
	return "acquire"
}

// isTransfer: the lease went from a holder to the other member without a failover; the new holder did not
// ask and must be sent its grant.
func isTransfer(hc *lease.HolderChanged) bool {
	return hc.From != "" && hc.To != "" && hc.From != hc.To && !hc.Failover && hc.Grant != nil
}

// withdrawVerdict is what happens to one queued command on the old holder when the lease moves.
type withdrawVerdict int

const (
	keepQueued withdrawVerdict = iota // not a command for the pair's devices
	moveToHolder
	interruptIt
)

// decideWithdraw: a queued operator command naming only the pair's devices moves when the old holder never
// started it (no RUNNING ack, and its seq above the mark the node reported at hello); a started one is
// interrupted, never re-run.
func decideWithdraw(minerIDs []string, devices map[string]bool, running bool, seq, nodeMark uint64) withdrawVerdict {
	if len(minerIDs) == 0 || !slices.ContainsFunc(minerIDs, func(id string) bool { return devices[id] }) {
		return keepQueued
	}
	if running || seq <= nodeMark {
		return interruptIt
	}
	return moveToHolder
}

// interruptedMessage is the operator's explanation for a command the old holder started.
func interruptedMessage(from, to string, epoch uint64, failover bool) string {
	how := "lease transfer"
	if failover {
		how = "lease failover"
	}
	if to == "" {
		to = "nobody"
	}
	return fmt.Sprintf("interrupted by %s from %s to %s at epoch %d: the outcome is unknown; check the miner and issue the command again if needed",
		how, from, to, epoch)
}

// livePairCommands drops commands whose timeout has passed (the CommandTracker has marked or will mark them
// timed out; sending them now could run what the operator was told did not happen).
func livePairCommands(cmds []pairCommand, timeout time.Duration, now time.Time) (live []pairCommand, expired int) {
	for _, c := range cmds {
		if !c.issuedAt.Add(timeout).After(now) {
			expired++
			continue
		}
		live = append(live, c)
	}
	return live, expired
}
