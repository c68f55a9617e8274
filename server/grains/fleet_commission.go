package grains

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/messages/sealing"
	"github.com/hashfleet/hashfleet/server/credentials"
	"github.com/hashfleet/hashfleet/server/store"
)

// StartScan asks a node to scan its LAN. A password is sealed to the node (bound to this scan) and wiped
// before anything is sent or stored. Errors wrap ErrInvalidScan, ErrInvalidNode, ErrNoCredentialKey or
// ErrStore.
func (f *Fleet) StartScan(ctx context.Context, r ScanRequest) (ScanStarted, error) {
	defer sealing.Wipe(r.Password)
	if err := validateScan(r); err != nil {
		return ScanStarted{}, err
	}
	node, err := f.resolveNode(ctx, r.Node)
	if err != nil {
		return ScanStarted{}, err
	}
	scanID := newID(scanIDPrefix, f.cfg.Clock.Now())
	req := &pb.DiscoveryRequest{ScanId: scanID, Targets: slices.Clone(r.Targets), Protocols: slices.Clone(r.Protocols),
		CgminerPorts: r.CGMinerPorts, AntminerWebPorts: r.AntminerWebPorts, ProtoPorts: r.ProtoPorts, TlsPorts: r.TLSPorts}
	if len(r.Password) > 0 {
		key, err := f.nodeKey(node)
		if err != nil {
			return ScanStarted{}, err
		}
		pub, err := sealing.ParsePublicKey(key.PublicKey)
		if err != nil {
			return ScanStarted{}, fmt.Errorf("%w: %v", ErrNoCredentialKey, err)
		}
		env, err := sealing.Seal(pub, node, "scan/"+scanID, sealing.PurposeMinerLogin, r.Password)
		if err != nil {
			return ScanStarted{}, fmt.Errorf("%w: seal the scan login: %v", ErrInvalidScan, err)
		}
		if req.AntminerEnvelope, err = env.MarshalBinary(); err != nil {
			return ScanStarted{}, fmt.Errorf("%w: %v", ErrInvalidScan, err)
		}
		req.AntminerUser = r.Username
	}
	return ask[ScanStarted](ctx, f, toOrg, &startScan{scanID: scanID, node: node, req: req, actor: r.Actor})
}

// resolveNode returns node, or the org's only node when node is "".
func (f *Fleet) resolveNode(ctx context.Context, node string) (string, error) {
	if node != "" {
		if err := store.ValidNodeID(node); err != nil {
			return "", fmt.Errorf("%w: %v", ErrInvalidNode, err)
		}
		return node, nil
	}
	return ask[string](ctx, f, toOrg, &onlyNode{})
}

type onlyNode struct{}

func (f *Fleet) nodeKey(node string) (credentials.NodeKey, error) {
	if f.cfg.NodeKey == nil {
		return credentials.NodeKey{}, fmt.Errorf("%w %s (no key source configured)", ErrNoCredentialKey, node)
	}
	k, err := f.cfg.NodeKey(node)
	if err != nil {
		return credentials.NodeKey{}, fmt.Errorf("%w %s: %v", ErrNoCredentialKey, node, err)
	}
	return k, nil
}

// Scan returns a scan's record; ErrUnknownScan when there is none.
func (f *Fleet) Scan(id string) (*pb.ScanRecord, error) {
	rec, err := f.cfg.Store.Scan(id)
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrInvalidKey) {
		return nil, fmt.Errorf("%w: %s", ErrUnknownScan, id)
	}
	return rec, err
}

// Scans returns the newest limit scans (without their devices), oldest first.
func (f *Fleet) Scans(limit int) ([]*pb.ScanRecord, error) { return f.cfg.Store.Scans(limit) }

// StartPairing asks the node that discovered the devices (or r.Node) to pair them. A password is sealed by
// the Vault to that node (the cloud keeps only the envelope) and wiped; the node tries it, or the defaults
// without one, and the devices become the node's when it reports them paired (Pairing shows the outcome).
// Errors wrap ErrInvalidPairing, ErrUnknownMiner, ErrOwnedElsewhere, ErrInvalidNode, ErrNoCredentialKey or
// ErrStore.
func (f *Fleet) StartPairing(ctx context.Context, r PairingRequest) (PairingStarted, error) {
	defer sealing.Wipe(r.Password)
	if len(r.Password) > 0 && (len(r.Password) > sealing.MaxPlaintextLen || len(r.Username) > maxLoginUserLen) {
		return PairingStarted{}, fmt.Errorf("%w: username or password too long", ErrInvalidPairing)
	}
	if len(r.Password) == 0 && r.Username != "" {
		return PairingStarted{}, fmt.Errorf("%w: a username needs a password", ErrInvalidPairing)
	}
	plan, err := ask[pairingPlan](ctx, f, toOrg, &preparePairing{node: r.Node, minerIDs: r.MinerIDs})
	if err != nil {
		return PairingStarted{}, err
	}
	given := len(r.Password) > 0
	if given {
		if err := f.sealLogins(plan, r.Username, r.Password); err != nil {
			return PairingStarted{}, err
		}
	}
	id := newID(pairingIDPrefix, f.cfg.Clock.Now())
	return ask[PairingStarted](ctx, f, toOrg, &startPairing{pairingID: id, node: plan.node, devices: plan.devices,
		given: given, actor: r.Actor})
}

// sealLogins seals password to the plan's node for every device (the Vault keeps the envelopes) and attaches
// each device's envelope and user name to the plan's devices.
func (f *Fleet) sealLogins(plan pairingPlan, user string, password []byte) error {
	if f.cfg.Vault == nil {
		return fmt.Errorf("%w: no credential vault on this server", ErrNoCredentialKey)
	}
	key, err := f.nodeKey(plan.node)
	if err != nil {
		return err
	}
	owners := []credentials.NodeKey{key}
	for _, d := range plan.devices {
		err := f.cfg.Vault.Put(f.cfg.OrgID, d.GetMinerId(), sealing.PurposeMinerLogin, password, owners)
		if errors.Is(err, credentials.ErrOwnersMismatch) && d.GetNodeId() == plan.node {
			// A login sealed for an earlier, unsuccessful pairing to another node: the device is unowned (the
			// plan checked), so the old envelope goes and the new one is sealed to this node.
			if err = f.cfg.Vault.Delete(d.GetMinerId(), sealing.PurposeMinerLogin); err == nil {
				err = f.cfg.Vault.Put(f.cfg.OrgID, d.GetMinerId(), sealing.PurposeMinerLogin, password, owners)
			}
		}
		if err != nil {
			return fmt.Errorf("%w: seal the login of %s: %v", ErrInvalidPairing, d.GetMinerId(), err)
		}
	}
	envs, err := loginEnvelopes(f.cfg.Vault, plan.node)
	if err != nil {
		return fmt.Errorf("%w: read back sealed logins: %v", ErrStore, err)
	}
	for _, d := range plan.devices {
		env, ok := envs[d.GetMinerId()]
		if !ok {
			return fmt.Errorf("%w: the vault has no login of %s for node %s", ErrStore, d.GetMinerId(), plan.node)
		}
		d.LoginEnvelope, d.LoginUser = env, user
	}
	return nil
}

// Pairing returns a pairing's record; ErrUnknownPairing when there is none.
func (f *Fleet) Pairing(id string) (*pb.PairingRecord, error) {
	rec, err := f.cfg.Store.Pairing(id)
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrInvalidKey) {
		return nil, fmt.Errorf("%w: %s", ErrUnknownPairing, id)
	}
	return rec, err
}

// maxPairingsScanned bounds the pairings read to find each device's latest attempt.
const maxPairingsScanned = 1000

// DeviceList lists devices by status: "discovered" (reported by a node, not paired), "paired" (in the
// ownership map), or "" for both; each with its latest pairing attempt.
func (f *Fleet) DeviceList(status string) ([]DeviceEntry, error) {
	if status != "" && status != DeviceDiscovered && status != DevicePaired {
		return nil, fmt.Errorf("%w: status %q (want %s or %s)", ErrInvalidPairing, status, DeviceDiscovered, DevicePaired)
	}
	pairings, err := f.cfg.Store.Pairings(maxPairingsScanned)
	if err != nil {
		return nil, err
	}
	type attempt struct {
		d  *pb.DevicePairing
		id string
	}
	latest := map[string]attempt{} // node/miner → newest attempt (pairings are oldest first)
	for _, p := range pairings {
		for _, d := range p.GetDevices() {
			latest[p.GetNodeId()+"/"+d.GetMinerId()] = attempt{d, p.GetPairingId()}
		}
	}
	var out []DeviceEntry
	add := func(d *pb.Device, st string) {
		a := latest[d.GetNodeId()+"/"+d.GetMinerId()]
		out = append(out, DeviceEntry{Device: d, Status: st, Pairing: a.d, PairingID: a.id})
	}
	if status != DevicePaired {
		pend, err := f.cfg.Store.PendingDevices()
		if err != nil {
			return nil, err
		}
		for _, d := range pend {
			add(d, DeviceDiscovered)
		}
	}
	if status != DeviceDiscovered {
		devs, err := f.cfg.Store.Devices()
		if err != nil {
			return nil, err
		}
		for _, d := range devs {
			add(d, DevicePaired)
		}
	}
	slices.SortStableFunc(out, func(a, b DeviceEntry) int {
		if c := compare(a.Device.GetMinerId(), b.Device.GetMinerId()); c != 0 {
			return c
		}
		return compare(a.Device.GetNodeId(), b.Device.GetNodeId())
	})
	return out, nil
}

func compare(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
