package bootstrap

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashfleet/hashfleet/actors/secretfile"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/messages/signing"
	"github.com/hashfleet/hashfleet/node"
	"github.com/hashfleet/hashfleet/node/identity"
	"github.com/hashfleet/hashfleet/node/store"
	"go.uber.org/fx"
)

// NodeStatusReport is what `hashfleet node status` shows, and what a running node writes to status.json
// (the node's Badger store is locked while it runs).
type NodeStatusReport struct {
	WrittenAt time.Time `json:"written_at"`
	// Running: written by the running node (PID) rather than read from its store.
	Running bool   `json:"running"`
	PID     int    `json:"pid,omitempty"`
	NodeID  string `json:"node_id"`
	OrgID   string `json:"org_id"`
	Server  string `json:"server"`
	// LinkUp and the link fields are known only while the node runs.
	LinkUp    bool          `json:"link_up"`
	LinkSince time.Time     `json:"link_since,omitzero"`
	LinkError string        `json:"link_error,omitempty"`
	SeqMark   uint64        `json:"seq_mark"`
	Owned     int           `json:"owned_devices"`
	Keys      []keyStatus   `json:"command_keys"`
	Audit     []auditStatus `json:"recent_audit"`
}

type keyStatus struct {
	KeyID       string    `json:"key_id"`
	Fingerprint string    `json:"fingerprint"`
	Trust       string    `json:"trust"` // trusted or revoked
	ValidFrom   time.Time `json:"valid_from,omitzero"`
	RetireAfter time.Time `json:"retire_after,omitzero"`
}

type auditStatus struct {
	At        time.Time `json:"at"`
	Seq       uint64    `json:"seq"`
	CommandID string    `json:"command_id"`
	KeyID     string    `json:"key_id"`
	Code      string    `json:"code"`
	Message   string    `json:"message"`
}

const statusAuditTail = 10

func keyStatuses(keys []*pb.CommandKey) []keyStatus {
	out := make([]keyStatus, 0, len(keys))
	for _, k := range keys {
		ks := keyStatus{KeyID: k.GetKeyId(), Trust: "trusted"}
		if k.GetRevoked() {
			ks.Trust = "revoked"
		}
		if len(k.GetPublicKey()) > 0 {
			ks.Fingerprint = signing.Fingerprint(k.GetPublicKey())
		}
		if ms := k.GetValidFromUnixMs(); ms > 0 {
			ks.ValidFrom = time.UnixMilli(ms).UTC()
		}
		if ms := k.GetRetireAfterUnixMs(); ms > 0 {
			ks.RetireAfter = time.UnixMilli(ms).UTC()
		}
		out = append(out, ks)
	}
	return out
}

func auditStatuses(recs []*pb.AuditRecord) []auditStatus {
	out := make([]auditStatus, 0, len(recs))
	for _, r := range recs {
		out = append(out, auditStatus{At: time.UnixMilli(r.GetAtUnixMs()).UTC(), Seq: r.GetMonotonicSeq(), CommandID: r.GetCommandId(),
			KeyID: r.GetKeyId(), Code: strings.ToLower(strings.TrimPrefix(r.GetCode().String(), "RESULT_CODE_")), Message: r.GetMessage()})
	}
	return out
}

// writeStatusWhileRunning writes status.json every interval while the node runs (a goroutine owned by the
// lifecycle, stopped before the node).
func writeStatusWhileRunning(lc fx.Lifecycle, n *node.Node, e identity.Enrollment, path string, every time.Duration, log *slog.Logger) {
	stop, done := make(chan struct{}), make(chan struct{})
	lc.Append(fx.Hook{
		OnStart: func(context.Context) error {
			go func() {
				defer close(done)
				t := time.NewTicker(every)
				defer t.Stop()
				seen := 0
				var tail []*pb.AuditRecord
				for {
					recs, err := n.Audit(seen, 0)
					if err == nil {
						seen += len(recs)
						tail = append(tail, recs...)
						if len(tail) > statusAuditTail {
							tail = tail[len(tail)-statusAuditTail:]
						}
					}
					if err := writeStatus(n, e, path, tail); err != nil {
						log.Warn("cannot write the node status file", slog.String("path", path), slog.Any("err", err))
					}
					select {
					case <-stop:
						return
					case <-t.C:
					}
				}
			}()
			return nil
		},
		OnStop: func(context.Context) error {
			close(stop)
			<-done
			return nil
		},
	})
}

func writeStatus(n *node.Node, e identity.Enrollment, path string, tail []*pb.AuditRecord) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	r := NodeStatusReport{WrittenAt: time.Now().UTC(), Running: true, PID: os.Getpid(), NodeID: e.NodeID, OrgID: e.OrgID,
		Server: e.ServerURL, Audit: auditStatuses(tail)}
	if ls, err := n.LinkStatus(ctx); err == nil {
		r.LinkUp, r.LinkSince, r.LinkError = ls.Up, ls.Since.UTC(), ls.LastError
	}
	if gs, err := n.Gate(ctx); err == nil {
		r.SeqMark, r.Owned = gs.SeqMark, gs.Owned
	}
	if _, keys, ok := n.TrustedKeys(); ok {
		r.Keys = keyStatuses(keys)
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return secretfile.WriteAtomic(filepath.Dir(path), filepath.Base(path), append(b, '\n'))
}

// NodeStatus prints a node's enrollment, key fingerprints and seq high-water mark, read-only: from its store
// when the node is stopped, from the status file the running node writes otherwise.
func NodeStatus(dataDir string, out io.Writer, asJSON bool) error {
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
	var r NodeStatusReport
	st, oerr := store.OpenReadOnly(store.Options{DataDir: filepath.Join(dataDir, nodeStoreDir), Logger: slog.New(slog.DiscardHandler)})
	switch {
	case oerr == nil:
		r = NodeStatusReport{WrittenAt: time.Now().UTC(), NodeID: e.NodeID, OrgID: e.OrgID, Server: e.ServerURL}
		r.SeqMark, _ = st.SeqMark()
		if _, keys, err := st.Keyring(); err == nil {
			r.Keys = keyStatuses(keys)
		}
		if devs, err := st.Ownership(); err == nil {
			r.Owned = len(devs)
		}
		if recs, err := st.Audit(0, 0); err == nil {
			if len(recs) > statusAuditTail {
				recs = recs[len(recs)-statusAuditTail:]
			}
			r.Audit = auditStatuses(recs)
		}
		_ = st.Close()
	default:
		b, err := os.ReadFile(filepath.Join(dataDir, nodeStatusFile))
		if err != nil {
			return fmt.Errorf("the node store cannot be read (%v) and there is no status file: is the node running, or was it never started? %w", oerr, err)
		}
		if err := json.Unmarshal(b, &r); err != nil {
			return fmt.Errorf("status file: %w", err)
		}
		if !r.Running {
			return fmt.Errorf("the node store cannot be read: %w", oerr)
		}
	}
	if asJSON {
		b, _ := json.MarshalIndent(struct {
			NodeStatusReport
			IdentityFingerprint     string `json:"identity_fingerprint"`
			MinerSigningFingerprint string `json:"miner_signing_fingerprint"`
			Enrolled                bool   `json:"enrolled"`
		}{r, id.Fingerprint(), signing.Fingerprint(id.MinerSigningPublicKey()), e.APIKey != ""}, "", "  ")
		_, err := fmt.Fprintln(out, string(b))
		return err
	}
	fmt.Fprintf(out, "identity fingerprint       %s\n", id.Fingerprint())
	fmt.Fprintf(out, "miner-signing fingerprint  %s\n", signing.Fingerprint(id.MinerSigningPublicKey()))
	switch {
	case e.NodeID == "":
		fmt.Fprintln(out, "enrollment                 not enrolled (run `hashfleet node enroll`)")
	case e.APIKey == "":
		fmt.Fprintf(out, "enrollment                 node %s, org %s, waiting for confirmation\n", e.NodeID, e.OrgID)
	default:
		fmt.Fprintf(out, "enrollment                 node %s, org %s, server %s, api key present\n", e.NodeID, e.OrgID, e.ServerURL)
	}
	if r.Running {
		link := "down"
		if r.LinkUp {
			link = "up"
		}
		fmt.Fprintf(out, "state                      running (pid %d; status as of %s)\n", r.PID, r.WrittenAt.Format(time.RFC3339))
		fmt.Fprintf(out, "cloud link                 %s since %s %s\n", link, r.LinkSince.Format(time.RFC3339), r.LinkError)
	} else {
		fmt.Fprintln(out, "state                      stopped (read from the store)")
	}
	fmt.Fprintf(out, "seq high-water mark        %d\n", r.SeqMark)
	fmt.Fprintf(out, "owned devices              %d\n", r.Owned)
	for _, k := range r.Keys {
		retire := ""
		if !k.RetireAfter.IsZero() {
			retire = " retires " + k.RetireAfter.Format(time.RFC3339)
		}
		fmt.Fprintf(out, "command key                %s %s %s%s\n", k.KeyID, k.Trust, k.Fingerprint, retire)
	}
	for _, a := range r.Audit {
		fmt.Fprintf(out, "audit                      %s seq %d %s %s\n", a.At.Format(time.RFC3339), a.Seq, a.Code, a.Message)
	}
	return nil
}
