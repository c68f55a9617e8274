package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashfleet/hashfleet/messages/signing"
	"github.com/hashfleet/hashfleet/miners/proto"
	"github.com/hashfleet/hashfleet/node"
	"github.com/hashfleet/hashfleet/node/identity"
	"github.com/hashfleet/hashfleet/node/store"
)

// NodeRotateSigningKey is `hashfleet node rotate-signing-key --data-dir DIR`: it stages a new
// miner-signing key, re-pairs every Proto rig of the node's ownership map to it (authenticated by the
// current key), and only when every rig moved replaces the current key with it. Run it with the node
// stopped (it reads the node's store). A failed rig leaves the current key in place and the staged key for
// the next attempt, which resumes. base configures the Proto driver (zero: defaults).
func NodeRotateSigningKey(ctx context.Context, dataDir string, base proto.Config, out io.Writer) error {
	if dataDir == "" {
		return errors.New("--data-dir is required")
	}
	idDir := filepath.Join(dataDir, nodeIdentityDir)
	id, err := identity.Load(idDir)
	if err != nil {
		return err
	}
	e, err := identity.LoadEnrollment(idDir)
	if err != nil && !errors.Is(err, identity.ErrNotEnrolled) {
		return err
	}
	st, err := store.OpenReadOnly(store.Options{DataDir: filepath.Join(dataDir, nodeStoreDir), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return fmt.Errorf("rotate-signing-key: the node store cannot be opened (stop the node first): %w", err)
	}
	devs, err := st.Ownership()
	_ = st.Close()
	if err != nil {
		return fmt.Errorf("rotate-signing-key: read the ownership map: %w", err)
	}
	next, err := identity.StageMinerSigningKey(idDir)
	if err != nil {
		return err
	}
	if base.Issuer == "" {
		base.Issuer = e.NodeID
	}
	rep, err := node.RotateSigningKey(ctx, node.SigningRotation{Devices: devs, Current: id.MinerSigner(), Next: next, Proto: base})
	fmt.Fprintf(out, "Proto rigs re-paired to the new miner-signing key: %d\n", len(rep.Moved))
	if len(rep.Failed) > 0 {
		ids := make([]string, 0, len(rep.Failed))
		for id := range rep.Failed {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			fmt.Fprintf(out, "  %s: %s\n", id, rep.Failed[id])
		}
	}
	if err != nil {
		fmt.Fprintf(out, "the current key stays in use; run the command again to resume with the staged key\n")
		return err
	}
	if err := identity.CommitMinerSigningKey(idDir); err != nil {
		return err
	}
	nid, err := identity.Load(idDir)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "miner-signing key rotated; old key retired; new fingerprint %s\n", signing.Fingerprint(nid.MinerSigningPublicKey()))
	if len(rep.Moved) > 0 {
		fmt.Fprintf(out, "rigs: %s\n", strings.Join(rep.Moved, ", "))
	}
	return nil
}
