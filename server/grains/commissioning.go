package grains

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/messages/sealing"
	"github.com/hashfleet/hashfleet/server/credentials"
	"github.com/hashfleet/hashfleet/server/store"
)

// Commissioning: discovery scans and pairings, the cloud's side. Pure decisions here; the Org actor
// (org_commission.go) gathers inputs, calls them, persists and sends.
//
//	POST /discovery ─▶ Fleet.StartScan ─(login sealed to the node)─▶ Org: ScanRecord "requested",
//	      signed DiscoveryRequest ─▶ node ─EVENT_KIND_SCAN─▶ Org: mergeScan, found devices pending (never owned)
//	POST /pairings  ─▶ Fleet.StartPairing ─(login sealed by the Vault to the target node)─▶ Org:
//	      PairingRecord, signed PairingRequest ─▶ node tries each device ─results─▶ Org: "paired" registers the
//	      device to the node (the ownership map), the node gets its new map (HelloAck, with sealed logins)

// Errors of commissioning.
var (
	// ErrInvalidScan: a scan request that cannot be sent (no targets, too many, bad ports, bad login).
	ErrInvalidScan = errors.New("invalid discovery request")
	// ErrUnknownScan / ErrUnknownPairing: no record with that id.
	ErrUnknownScan    = errors.New("unknown discovery scan")
	ErrUnknownPairing = errors.New("unknown pairing")
	// ErrInvalidPairing: a pairing that cannot be sent (no devices, ambiguous node, bad login).
	ErrInvalidPairing = errors.New("invalid pairing request")
	// ErrOwnedElsewhere: the device belongs to another node; a device belongs to one node (or one warm-standby
	// pair). Moving it is a transfer, not a pairing.
	ErrOwnedElsewhere = errors.New("device owned by another node")
	// ErrNoCredentialKey: credentials were given but the node's credential key is unknown, so they cannot be
	// sealed to it.
	ErrNoCredentialKey = errors.New("no credential key for the node: credentials cannot be sealed to it")
)

// Scan states as the cloud records them (the node reports running, done, canceled, failed).
const (
	ScanRequested = "requested" // queued for the node
	ScanRunning   = "running"
	ScanDone      = "done"
	ScanCanceled  = "canceled"
	ScanFailed    = "failed"  // the scan failed on the node
	ScanRefused   = "refused" // the node refused the command (gate) or could not start the scan
)

// scanFinal reports whether a scan state is final.
func scanFinal(state string) bool {
	switch state {
	case ScanDone, ScanCanceled, ScanFailed, ScanRefused:
		return true
	}
	return false
}

// Limits.
const (
	maxScanTargets  = 256  // target entries per request (the node parses and bounds the addresses)
	maxScanErrors   = 200  // target errors a scan record keeps (error_count counts them all)
	maxPairDevices  = 5000 // devices per pairing request
	maxLoginUserLen = 64
)

// ScanRequest is an operator's discovery request.
type ScanRequest struct {
	// Node runs the scan. Empty: the only node the org knows (an error when there are several).
	Node      string
	Targets   []string
	Protocols []pb.Protocol
	// Ports per protocol; empty: the node's defaults.
	CGMinerPorts, AntminerWebPorts, ProtoPorts, TLSPorts []int32
	// Username and Password are optional Antminer web credentials to read serial and MAC while scanning. The
	// password is sealed to the node (never stored in clear) and wiped after; it is the caller's to give.
	Username string
	Password []byte
	Actor    string
}

// ScanStarted answers StartScan.
type ScanStarted struct {
	ScanID string
	Node   string
}

// PairingRequest is an operator's pairing of discovered devices to a node.
type PairingRequest struct {
	// Node is the target node. Empty: the node that discovered the devices (an error when several did).
	Node     string
	MinerIDs []string
	// Username and Password are the devices' login (Antminer web CGI, Proto rig password), optional: without
	// them the node tries the defaults. The password is sealed by the Vault to the target node and wiped.
	Username string
	Password []byte
	Actor    string
}

// PairingStarted answers StartPairing.
type PairingStarted struct {
	PairingID string
	Node      string
}

// DeviceEntry is one device of the device list: discovered (waiting for pairing) or paired.
type DeviceEntry struct {
	Device *pb.Device
	// Status is "discovered" or "paired".
	Status string
	// Pairing is the device's latest pairing attempt (nil: none), in PairingID.
	Pairing   *pb.DevicePairing
	PairingID string
}

// Device list statuses.
const (
	DeviceDiscovered = "discovered"
	DevicePaired     = "paired"
)

// newID is a time-ordered id with a prefix: prefix, 12 hex digits of ms, 8 random hex digits.
func newID(prefix string, now time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s%012x%s", prefix, now.UnixMilli(), hex.EncodeToString(b[:]))
}

const (
	scanIDPrefix    = "scan-"
	pairingIDPrefix = "pair-"
)

// validateScan checks a scan request before anything is sealed or stored.
func validateScan(r ScanRequest) error {
	var errs []error
	if len(r.Targets) == 0 {
		errs = append(errs, errors.New("targets is empty"))
	}
	if len(r.Targets) > maxScanTargets {
		errs = append(errs, fmt.Errorf("%d target entries, at most %d", len(r.Targets), maxScanTargets))
	}
	for _, t := range r.Targets {
		if strings.TrimSpace(t) == "" || len(t) > 256 {
			errs = append(errs, fmt.Errorf("target %q is empty or too long", t))
		}
	}
	for _, p := range r.Protocols {
		if p != pb.Protocol_PROTOCOL_CGMINER && p != pb.Protocol_PROTOCOL_ANTMINER && p != pb.Protocol_PROTOCOL_PROTO {
			errs = append(errs, fmt.Errorf("protocol %v cannot be discovered", p))
		}
	}
	for _, ps := range [][]int32{r.CGMinerPorts, r.AntminerWebPorts, r.ProtoPorts, r.TLSPorts} {
		if len(ps) > 8 {
			errs = append(errs, fmt.Errorf("at most 8 ports per protocol, got %d", len(ps)))
		}
		for _, p := range ps {
			if p < 1 || p > 65535 {
				errs = append(errs, fmt.Errorf("port %d is not between 1 and 65535", p))
			}
		}
	}
	if len(r.Password) > 0 && r.Username == "" {
		errs = append(errs, errors.New("a password needs a username"))
	}
	if len(r.Username) > maxLoginUserLen || len(r.Password) > sealing.MaxPlaintextLen {
		errs = append(errs, errors.New("username or password too long"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidScan, err)
	}
	return nil
}

// mergeScan folds one node report into the scan's record (a copy is returned). Found devices are upserted by
// miner id, so replays and the final report's full list change nothing twice; errors are kept up to
// maxScanErrors. Counters and state come from a report newer than the last applied (report_seq), or from any
// final report; a final record never goes back to running.
func mergeScan(rec *pb.ScanRecord, r *pb.ScanReport, now time.Time) *pb.ScanRecord {
	out := cloneScan(rec)
	final := scanFinal(r.GetState())
	if (r.GetReportSeq() > out.GetReportSeq() || final) && !(scanFinal(out.GetState()) && !final) {
		out.State = r.GetState()
		out.Total, out.Probed, out.FoundCount, out.ErrorCount = r.GetTotal(), r.GetProbed(), r.GetFoundCount(), r.GetErrorCount()
		out.ReportSeq = max(out.GetReportSeq(), r.GetReportSeq())
		if m := r.GetMessage(); m != "" {
			out.Message = m
		}
	}
	if ms := r.GetStartedAtUnixMs(); ms > 0 && out.GetStartedAtUnixMs() == 0 {
		out.StartedAtUnixMs = ms
	}
	if ms := r.GetFinishedAtUnixMs(); ms > 0 && final {
		out.FinishedAtUnixMs = ms
	}
	if final && out.FinishedAtUnixMs == 0 {
		out.FinishedAtUnixMs = now.UnixMilli()
	}
	idx := make(map[string]int, len(out.Found))
	for i, d := range out.Found {
		idx[d.GetMinerId()] = i
	}
	for _, d := range r.GetFound() {
		if store.ValidID(d.GetMinerId()) != nil {
			continue
		}
		d = scrubDevice(d)
		if i, ok := idx[d.GetMinerId()]; ok {
			out.Found[i] = d
			continue
		}
		idx[d.GetMinerId()] = len(out.Found)
		out.Found = append(out.Found, d)
	}
	for _, e := range r.GetErrors() {
		if len(out.Errors) >= maxScanErrors {
			break
		}
		out.Errors = append(out.Errors, e)
	}
	return out
}

// scrubDevice is a copy of a device a node reported, without anything a node should not send the cloud.
func scrubDevice(d *pb.Device) *pb.Device {
	return &pb.Device{MinerId: d.GetMinerId(), Address: d.GetAddress(), Protocol: d.GetProtocol(), Model: d.GetModel(),
		Serial: d.GetSerial(), Mac: d.GetMac(), WebAddress: d.GetWebAddress()}
}

func cloneScan(r *pb.ScanRecord) *pb.ScanRecord {
	c := &pb.ScanRecord{ScanId: r.GetScanId(), NodeId: r.GetNodeId(), Actor: r.GetActor(), CreatedAtUnixMs: r.GetCreatedAtUnixMs(),
		Targets: slices.Clone(r.GetTargets()), Protocols: slices.Clone(r.GetProtocols()), State: r.GetState(), Total: r.GetTotal(),
		Probed: r.GetProbed(), FoundCount: r.GetFoundCount(), ErrorCount: r.GetErrorCount(), Found: slices.Clone(r.GetFound()),
		Errors: slices.Clone(r.GetErrors()), Message: r.GetMessage(), StartedAtUnixMs: r.GetStartedAtUnixMs(),
		FinishedAtUnixMs: r.GetFinishedAtUnixMs(), ReportSeq: r.GetReportSeq()}
	return c
}

// OwnerPolicy says which node may own a device. A device belongs to one node, or to the two nodes of one
// warm-standby pair: PartnerOf is the seam for pairs (the node's declared standby partner, "" when none), so
// pairing a device to the partner of its owner is not "owned elsewhere". Nil PartnerOf: no pairs.
type OwnerPolicy struct {
	PartnerOf func(node string) string
}

// canOwn decides whether node may take a device whose current owner is owner ("" when unowned).
func (p OwnerPolicy) canOwn(owner, node string) error {
	switch {
	case owner == "" || owner == node:
		return nil
	case p.PartnerOf != nil && p.PartnerOf(owner) == node:
		return nil // warm-standby pair: both nodes own the device
	}
	return fmt.Errorf("%w: it belongs to node %s (move it with a transfer, not a pairing)", ErrOwnedElsewhere, owner)
}

// pairingTarget resolves the node a device is paired to and the device as discovered, from the pending
// entries naming it (one per reporting node) and its registration. node "" means: the one node that
// discovered it. A device already registered to the target may be paired again (new credentials).
func pairingTarget(id, node string, pending []*pb.Device, registered *pb.Device, policy OwnerPolicy) (string, *pb.Device, error) {
	var cands []*pb.Device
	for _, d := range pending {
		if node == "" || d.GetNodeId() == node {
			cands = append(cands, d)
		}
	}
	var dev *pb.Device
	switch {
	case len(cands) == 1:
		dev = cands[0]
	case len(cands) > 1:
		var nodes []string
		for _, c := range cands {
			nodes = append(nodes, c.GetNodeId())
		}
		return "", nil, fmt.Errorf("%w: %s was discovered by nodes %s: name the node", ErrInvalidPairing, id, strings.Join(nodes, ", "))
	case registered != nil && (node == "" || node == registered.GetNodeId()):
		dev = registered
	default:
		where := ""
		if node != "" {
			where = " by node " + node
		}
		return "", nil, fmt.Errorf("%w: %s was not discovered%s", ErrUnknownMiner, id, where)
	}
	target := dev.GetNodeId()
	if node != "" {
		target = node
	}
	if registered != nil {
		if err := policy.canOwn(registered.GetNodeId(), target); err != nil {
			return "", nil, fmt.Errorf("pair %s: %w", id, err)
		}
	}
	d := scrubDevice(dev)
	d.NodeId = target
	return target, d, nil
}

// applyPairingResult folds a node's per-device result into the record; it returns the devices that became
// paired by it (code SUCCEEDED, not final before).
func applyPairingResult(rec *pb.PairingRecord, results []*pb.MinerResult, now time.Time) (paired []*pb.Device) {
	by := make(map[string]*pb.DevicePairing, len(rec.GetDevices()))
	for _, d := range rec.GetDevices() {
		by[d.GetMinerId()] = d
	}
	for _, r := range results {
		d := by[r.GetMinerId()]
		if d == nil || IsFinalResult(d.GetCode()) {
			continue
		}
		d.Code, d.Message, d.AtUnixMs = r.GetCode(), r.GetMessage(), now.UnixMilli()
		if d.Code == pb.ResultCode_RESULT_CODE_UNSPECIFIED {
			d.Code = pb.ResultCode_RESULT_CODE_FAILED
		}
		if d.Code == pb.ResultCode_RESULT_CODE_SUCCEEDED {
			paired = append(paired, d.GetDevice())
		}
	}
	finishPairing(rec, now)
	return paired
}

// applyPairingAck folds the node gate's ack: RUNNING moves pending devices on; a final code (a refusal) is
// every unfinished device's result.
func applyPairingAck(rec *pb.PairingRecord, code pb.ResultCode, msg string, now time.Time) {
	for _, d := range rec.GetDevices() {
		switch {
		case IsFinalResult(d.GetCode()):
		case IsFinalResult(code):
			d.Code, d.Message, d.AtUnixMs = code, "the node did not run the pairing: "+msg, now.UnixMilli()
		case code == pb.ResultCode_RESULT_CODE_RUNNING || code == pb.ResultCode_RESULT_CODE_DUPLICATE:
			d.Code = pb.ResultCode_RESULT_CODE_RUNNING
		}
	}
	finishPairing(rec, now)
}

func finishPairing(rec *pb.PairingRecord, now time.Time) {
	if rec.GetFinishedAtUnixMs() != 0 {
		return
	}
	for _, d := range rec.GetDevices() {
		if !IsFinalResult(d.GetCode()) {
			return
		}
	}
	rec.FinishedAtUnixMs = now.UnixMilli()
}

// PairingStatus is the API name of a device's pairing code: paired, needs_credentials, wrong_credentials,
// pending, running, or failed (with the code in the record).
func PairingStatus(c pb.ResultCode) string {
	switch c {
	case pb.ResultCode_RESULT_CODE_SUCCEEDED:
		return "paired"
	case pb.ResultCode_RESULT_CODE_NEEDS_CREDENTIALS:
		return "needs_credentials"
	case pb.ResultCode_RESULT_CODE_WRONG_CREDENTIALS:
		return "wrong_credentials"
	case pb.ResultCode_RESULT_CODE_UNSPECIFIED, pb.ResultCode_RESULT_CODE_PENDING:
		return "pending"
	case pb.ResultCode_RESULT_CODE_RUNNING:
		return "running"
	}
	return "failed"
}

// Vault is what commissioning needs from the credential vault (server/credentials.Vault).
type Vault interface {
	Put(orgID, deviceID, purpose string, plaintext []byte, owners []credentials.NodeKey) error
	Envelopes(nodeID string) ([]*sealing.Envelope, error)
	Delete(deviceID, purpose string) error
}

// loginEnvelopes returns a node's sealed miner logins by device, binary-encoded for Device.login_envelope.
func loginEnvelopes(v Vault, node string) (map[string][]byte, error) {
	if v == nil {
		return nil, nil
	}
	envs, err := v.Envelopes(node)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]byte, len(envs))
	for _, e := range envs {
		if e.Purpose != sealing.PurposeMinerLogin {
			continue
		}
		b, err := e.MarshalBinary()
		if err != nil {
			return nil, fmt.Errorf("envelope of %s: %w", e.DeviceID, err)
		}
		out[e.DeviceID] = b
	}
	return out, nil
}

// planScan adds one scan report to an events plan: the report itself, and each device it found that no node
// owns as pending for node (registered devices are left as they are: discovery never claims or moves one).
func planScan(p *eventsPlan, node string, r *pb.ScanReport, find func(string) (*pb.Device, bool)) bool {
	if r == nil || store.ValidNodeID(r.GetScanId()) != nil || !strings.HasPrefix(r.GetScanId(), scanIDPrefix) {
		return false
	}
	p.scans = append(p.scans, r)
	for _, d := range r.GetFound() {
		id := d.GetMinerId()
		if store.ValidID(id) != nil {
			continue
		}
		if _, owned := find(id); owned {
			continue
		}
		pd := scrubDevice(d)
		pd.NodeId = node
		if i := slices.IndexFunc(p.pending, func(x *pb.Device) bool { return x.GetMinerId() == id }); i >= 0 {
			p.pending[i] = pd
			continue
		}
		p.pending = append(p.pending, pd)
	}
	return true
}
