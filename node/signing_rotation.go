package node

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"errors"
	"fmt"
	"sort"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners/proto"
)

// Rotating the node's miner-signing key (hashfleet node rotate-signing-key):
//
//	identity.StageMinerSigningKey ─▶ next key (staged, 0600)
//	RotateSigningKey: for each owned Proto rig, HandOver(next) authenticated by the current key's JWT;
//	    a rig that already accepts the next key (an interrupted rotation) counts as moved; every moved rig
//	    is checked with a request signed by the next key
//	all moved ─▶ identity.CommitMinerSigningKey: the next key replaces the current one, which is gone
//	any failed ─▶ nothing is committed; the rigs moved so far accept only the staged key, which a retry reuses
//
// Rigs are handled one at a time: a node has few Proto rigs per rotation and each takes two requests.

// ErrSigningRotationIncomplete: some rigs could not be moved to the next key; the current key stays.
var ErrSigningRotationIncomplete = errors.New("miner-signing key rotation incomplete")

// SigningRotation is one rotation's input.
type SigningRotation struct {
	// Devices are the node's owned devices (its ownership map); only Proto rigs are touched.
	Devices []*pb.Device
	// Current and Next are the miner-signing keys (ed25519 signers).
	Current, Next crypto.Signer
	// Proto is the base driver configuration (scheme, TLS, timeouts, clock, issuer); SigningKey and
	// Password are set per attempt.
	Proto proto.Config
}

// SigningRotationReport says what happened to each rig.
type SigningRotationReport struct {
	Moved  []string          // rigs that accept the next key (and no longer the current one)
	Failed map[string]string // rig → why it was not moved
}

// RotateSigningKey moves every Proto rig of r.Devices from r.Current to r.Next. It returns
// ErrSigningRotationIncomplete (with the report) when any rig failed: the caller must not commit then.
func RotateSigningKey(ctx context.Context, r SigningRotation) (SigningRotationReport, error) {
	rep := SigningRotationReport{Failed: map[string]string{}}
	if r.Current == nil || r.Next == nil {
		return rep, errors.New("rotate miner-signing key: current and next keys are required")
	}
	next, ok := r.Next.Public().(ed25519.PublicKey)
	if !ok {
		return rep, fmt.Errorf("rotate miner-signing key: next key is %T, want ed25519", r.Next.Public())
	}
	for _, dev := range r.Devices {
		if dev.GetProtocol() != pb.Protocol_PROTOCOL_PROTO {
			continue
		}
		if err := rotateRig(ctx, dev, r, next); err != nil {
			rep.Failed[dev.GetMinerId()] = err.Error()
			continue
		}
		rep.Moved = append(rep.Moved, dev.GetMinerId())
	}
	sort.Strings(rep.Moved)
	if len(rep.Failed) > 0 {
		return rep, fmt.Errorf("rotate miner-signing key: %d of %d rigs not moved: %w", len(rep.Failed), len(rep.Failed)+len(rep.Moved),
			ErrSigningRotationIncomplete)
	}
	return rep, nil
}

// rotateRig hands one rig to next with the current key, then checks the next key works.
func rotateRig(ctx context.Context, dev *pb.Device, r SigningRotation, next ed25519.PublicKey) error {
	driver := func(key crypto.Signer) (*proto.Driver, error) {
		cfg := r.Proto
		cfg.SigningKey, cfg.Password = key, ""
		return proto.New(dev, cfg)
	}
	cur, err := driver(r.Current)
	if err != nil {
		return err
	}
	defer cur.Close()
	nd, err := driver(r.Next)
	if err != nil {
		return err
	}
	defer nd.Close()
	if herr := cur.HandOver(ctx, next); herr != nil {
		// An interrupted rotation may have moved it already.
		if _, perr := nd.Poll(ctx); perr == nil {
			return nil
		}
		return herr
	}
	if _, err := nd.Poll(ctx); err != nil {
		return fmt.Errorf("re-paired, but a request signed with the next key failed: %w", err)
	}
	return nil
}
