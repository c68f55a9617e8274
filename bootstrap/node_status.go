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

	"github.com/hashfleet/hashfleet/actors/badgerkv/inspect"
	"github.com/hashfleet/hashfleet/actors/secretfile"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/messages/signing"
	"github.com/hashfleet/hashfleet/node"
	"github.com/hashfleet/hashfleet/node/identity"
	"github.com/hashfleet/hashfleet/node/spool"
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
	// Spool is the offline spool: what waits for the cloud's ack, and how far a replay has got. Nil when the
	// node has none (never ran) or it cannot be read.
	Spool *spoolStatus `json:"spool,omitempty"`
	// Admin is the running node's loopback admin endpoint (node_admin.go) and its bearer token; this file is
	// 0600, so only the node's user can use it.
	Admin *adminStatus `json:"admin,omitempty"`
	// Pair is the node's warm-standby pair and lease while it runs (nil: not in a pair).
	Pair *leasePairStatus `json:"pair,omitempty"`
}

// leasePairStatus is the pair and lease in status.json and `node status`.
type leasePairStatus struct {
	PairID    string    `json:"pair_id"`
	Pending   bool      `json:"pending,omitempty"`
	Peer      string    `json:"peer,omitempty"`
	PeerState string    `json:"peer_state,omitempty"`
	Gossip    string    `json:"gossip_addr,omitempty"`
	GossipErr string    `json:"gossip_error,omitempty"`
	Holder    string    `json:"holder,omitempty"`
	Epoch     uint64    `json:"epoch"`
	Mode      string    `json:"mode"`
	FenceAt   time.Time `json:"writes_until,omitzero"`
}

func pairJSON(st node.PairStatus) *leasePairStatus {
	if !st.Paired {
		return nil
	}
	p := &leasePairStatus{PairID: st.PairID, Pending: st.Pending, Peer: st.Peer, PeerState: st.PeerState, Gossip: st.GossipAddr,
		GossipErr: st.GossipError, Holder: st.Holder, Epoch: st.Lease.Epoch, Mode: st.Lease.Mode.String()}
	if st.Pending {
		p.Mode = "fenced"
	}
	if st.Lease.Permit.OK {
		p.FenceAt = st.Lease.Permit.Until.UTC()
	}
	return p
}

// spoolStatus is the spool in status.json and `node status`.
type spoolStatus struct {
	Dir string `json:"dir"`
	// Batches and Items are the totals of both kinds; the per-kind figures below are known while the node
	// runs (read from a stopped node's files, only the totals are).
	Batches           int       `json:"batches"`
	Items             int       `json:"items"`
	TelemetryBatches  int       `json:"telemetry_batches"`
	Samples           int       `json:"samples"`
	AggregatedBatches int       `json:"aggregated_batches"`
	EventBatches      int       `json:"event_batches"`
	Events            int       `json:"events"`
	ProtectedEvents   int       `json:"protected_events"`
	Bytes             int64     `json:"bytes"`
	MaxBytes          int64     `json:"max_bytes,omitempty"`
	Oldest            time.Time `json:"oldest,omitzero"`
	OldestAgeSeconds  float64   `json:"oldest_age_seconds,omitempty"`
	// Replay is the current backlog's progress; nil when nothing waits (or read from a stopped node's files).
	Replay *replayStatus `json:"replay,omitempty"`
	// Note says why something is missing (a spool read from the files of a node that was killed).
	Note string `json:"note,omitempty"`
}

type replayStatus struct {
	Acked            int64     `json:"acked"`
	Total            int64     `json:"total"`
	Percent          float64   `json:"percent"`
	ItemsPerSecond   float64   `json:"items_per_second"`
	RemainingSeconds float64   `json:"remaining_seconds,omitempty"`
	Since            time.Time `json:"since"`
	Text             string    `json:"text"`
}

// spoolJSON renders a running node's spool.
func spoolJSON(sp node.SpoolStatus, now time.Time) *spoolStatus {
	st := sp.Stats
	out := &spoolStatus{Dir: sp.Dir, Batches: st.Telemetry.Batches + st.Events.Batches, Items: st.Telemetry.Items + st.Events.Items,
		TelemetryBatches: st.Telemetry.Batches, Samples: st.Telemetry.Items,
		AggregatedBatches: st.Telemetry.Aggregated, EventBatches: st.Events.Batches, Events: st.Events.Items,
		ProtectedEvents: st.Events.Protected, Bytes: st.Bytes, MaxBytes: st.MaxBytes}
	if !st.Oldest.IsZero() {
		out.Oldest = st.Oldest.UTC()
		out.OldestAgeSeconds = max(0, now.Sub(st.Oldest).Seconds())
	}
	if p := sp.Progress; !p.Done() {
		out.Replay = &replayStatus{Acked: p.Acked, Total: p.Total, Percent: 100 * p.Fraction(), ItemsPerSecond: p.Rate,
			RemainingSeconds: p.Remaining().Seconds(), Since: p.Since.UTC(), Text: p.String()}
	}
	return out
}

// spoolFromFiles reads a stopped node's spool with the inspector (read-only); nil when there is none.
func spoolFromFiles(dir string) *spoolStatus {
	if _, err := os.Stat(filepath.Join(dir, "MANIFEST")); err != nil {
		return nil
	}
	cfg := inspect.DefaultConfig(dir, spool.Schema())
	cfg.Kind = spool.Schema().Kind
	in, err := inspect.Open(cfg)
	if err != nil {
		note := err.Error()
		if errors.Is(err, inspect.ErrUnclean) {
			note = "not closed cleanly (the node was killed): the next start recovers it; `hashfleet store inspect --recover-copy --dir " + dir + "` shows it now"
		}
		return &spoolStatus{Dir: dir, Note: note}
	}
	defer in.Close()
	s, err := in.Summary()
	if err != nil {
		return &spoolStatus{Dir: dir, Note: err.Error()}
	}
	out := &spoolStatus{Dir: dir, Note: "read from the spool's files (the node is stopped)"}
	if s.SpoolDepth != nil {
		out.Batches = int(*s.SpoolDepth)
	}
	if s.SpoolItems != nil {
		out.Items = int(*s.SpoolItems)
	}
	if s.OldestEntryAge != nil {
		out.OldestAgeSeconds = *s.OldestEntryAge
		out.Oldest = time.Now().Add(-time.Duration(*s.OldestEntryAge * float64(time.Second))).UTC().Truncate(time.Second)
	}
	for _, p := range s.Prefixes {
		out.Bytes += p.KeyBytes + p.ValueBytes
	}
	return out
}

func (s *spoolStatus) lines() []string {
	if s == nil {
		return nil
	}
	if s.Note != "" && s.Batches == 0 && s.Bytes == 0 {
		return []string{"spool                      " + s.Note}
	}
	var out []string
	held := fmt.Sprintf("%d telemetry batches (%d samples, %d of minute aggregates), %d event batches (%d events, %d command audit/local), %s",
		s.TelemetryBatches, s.Samples, s.AggregatedBatches, s.EventBatches, s.Events, s.ProtectedEvents, inspect.HumanBytes(s.Bytes))
	if s.Note != "" {
		held = fmt.Sprintf("%d batches, %d samples and events, %s (%s)", s.Batches, s.Items, inspect.HumanBytes(s.Bytes), s.Note)
	}
	if s.MaxBytes > 0 {
		held += " of " + inspect.HumanBytes(s.MaxBytes)
	}
	if !s.Oldest.IsZero() {
		held += fmt.Sprintf(", oldest %s old", (time.Duration(s.OldestAgeSeconds) * time.Second).String())
	}
	out = append(out, "spool                      "+held)
	if s.Replay != nil {
		out = append(out, "spool replay               "+s.Replay.Text)
	}
	return out
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
func writeStatusWhileRunning(lc fx.Lifecycle, n *node.Node, e identity.Enrollment, path string, every time.Duration, log *slog.Logger, admin *nodeAdmin) {
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
					if err := writeStatus(n, e, path, tail, admin); err != nil {
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

func writeStatus(n *node.Node, e identity.Enrollment, path string, tail []*pb.AuditRecord, admin *nodeAdmin) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	now := time.Now()
	r := NodeStatusReport{WrittenAt: now.UTC(), Running: true, PID: os.Getpid(), NodeID: e.NodeID, OrgID: e.OrgID,
		Server: e.ServerURL, Audit: auditStatuses(tail), Admin: admin.status()}
	if sp, ok := n.Spool(); ok {
		r.Spool = spoolJSON(sp, now)
	}
	if ls, err := n.LinkStatus(ctx); err == nil {
		r.LinkUp, r.LinkSince, r.LinkError = ls.Up, ls.Since.UTC(), ls.LastError
	}
	if gs, err := n.Gate(ctx); err == nil {
		r.SeqMark, r.Owned = gs.SeqMark, gs.Owned
	}
	if ps, err := n.LeaseStatus(ctx); err == nil {
		r.Pair = pairJSON(ps)
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
		r.Spool = spoolFromFiles(filepath.Join(dataDir, nodeStoreDir, spool.DirName))
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
	if r.Admin != nil {
		r.Admin.Token = "" // the status file has it; it is not printed
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
		if p := r.Pair; p != nil {
			until := ""
			if !p.FenceAt.IsZero() {
				until = " until " + p.FenceAt.Format(time.RFC3339Nano)
			}
			fmt.Fprintf(out, "pair                       %s, partner %s (%s), holder %q, epoch %d, this node %s%s\n",
				p.PairID, p.Peer, p.PeerState, p.Holder, p.Epoch, p.Mode, until)
		}
		if r.Admin != nil {
			fmt.Fprintf(out, "admin endpoint             %s (loopback; bearer token in %s)\n", r.Admin.URL, filepath.Join(dataDir, nodeStatusFile))
		}
	} else {
		fmt.Fprintln(out, "state                      stopped (read from the store)")
	}
	fmt.Fprintf(out, "seq high-water mark        %d\n", r.SeqMark)
	fmt.Fprintf(out, "owned devices              %d\n", r.Owned)
	for _, l := range r.Spool.lines() {
		fmt.Fprintln(out, l)
	}
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
