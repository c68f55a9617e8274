package harness

import (
	"context"
	"fmt"
	"strings"
	"time"
)

const (
	// keyWait bounds the wait for every node to take the key rotation and revocation. No fault runs yet and
	// every node is connected: the two commands take one round trip and one fsync each (under 0.2 s in 300
	// set-ups, four at a time, on 2 shared cores). A node whose stream breaks meanwhile notices within three
	// missed heartbeats (0.6 s), dials again within its backoff's 1 s (+20% jitter), and the cloud re-sends
	// every queued key command on attach; the harness holds any link to coming back within 10 s after a heal
	// (oracle 5, Config.FailoverTarget). A wait longer than that hides a lost command, it never rescues one.
	keyWait = 10 * time.Second
	// keyWaitSlow: a set-up slower than this prints a progress line.
	keyWaitSlow = 3 * time.Second
)

// keyWaitReport describes, per node, where the key rotation set-up stands: the node's seq mark against the
// one it must reach, its link, the keys it trusts, the audit records above the mark it started from, and
// what the cloud holds for it (seq counter, queue, stream). It is what a slow or failed set-up prints, so
// the cause shows without a replay.
func (a *attacker) keyWaitReport(ctx context.Context, marks map[*siteNode]uint64, newKey, oldKey string) string {
	var b strings.Builder
	srv := a.c.process()
	for n, m := range marks {
		fmt.Fprintf(&b, "\n  %s (%s): must reach seq mark %d;", n.name, n.nodeID, m+2)
		p := n.process()
		if p == nil {
			b.WriteString(" not running")
			continue
		}
		gctx, cancel := context.WithTimeout(ctx, time.Second)
		g, gerr := p.Node.Gate(gctx)
		cancel()
		if gerr != nil {
			fmt.Fprintf(&b, " gate: %v;", gerr)
		} else {
			fmt.Fprintf(&b, " mark %d, %d running;", g.SeqMark, g.Running)
		}
		lctx, cancel := context.WithTimeout(ctx, time.Second)
		st, lerr := p.Node.LinkStatus(lctx)
		cancel()
		if lerr != nil {
			fmt.Fprintf(&b, " link: %v;", lerr)
		} else {
			fmt.Fprintf(&b, " link up=%v since %s connects=%d goaways=%d pending=%d last error %q;", st.Up,
				st.Since.Format("15:04:05.000"), st.Connects, st.Goaways, st.PendingResults, st.LastError)
		}
		if _, keys, ok := p.Node.TrustedKeys(); ok {
			state := map[string]string{}
			for _, k := range keys {
				s := "trusted"
				if k.GetRevoked() {
					s = "revoked"
				}
				state[k.GetKeyId()] = s
			}
			fmt.Fprintf(&b, " new key %s %s, old key %s %s;", newKey, orNone(state[newKey]), oldKey, orNone(state[oldKey]))
		}
		if recs, err := p.Node.Audit(0, 10_000); err == nil {
			for _, r := range recs {
				if r.GetMonotonicSeq() > m {
					fmt.Fprintf(&b, "\n    node audit: seq %d %s key %s %s: %s", r.GetMonotonicSeq(), r.GetCommandId(), r.GetKeyId(),
						r.GetCode(), r.GetMessage())
				}
			}
		}
		if srv == nil {
			b.WriteString("\n    cloud down")
			continue
		}
		nctx, cancel := context.WithTimeout(ctx, time.Second)
		page, err := srv.Server.Fleet().Nodes(nctx)
		cancel()
		if err != nil {
			fmt.Fprintf(&b, "\n    cloud nodes: %v", err)
			continue
		}
		for _, ns := range page.Nodes {
			if ns.ID == n.nodeID {
				fmt.Fprintf(&b, "\n    cloud: connected=%v since %s, seq counter %d, %d queued, node's hello mark %d, epoch %d",
					ns.Connected, ns.ConnectedSince.Format("15:04:05.000"), ns.LastSeq, ns.QueuedCommands, ns.NodeLastSeq, ns.LeaseEpoch)
				for seq := m + 1; seq <= ns.LastSeq; seq++ {
					if c, err := srv.Server.Fleet().SentCommand(n.nodeID, seq); err == nil {
						fmt.Fprintf(&b, "\n    cloud sent: seq %d %s actor %s key %s epoch %d", seq, c.GetCommandId(), c.GetActor(), c.GetKeyId(),
							c.GetLeaseEpoch())
					}
				}
			}
		}
	}
	return b.String()
}

func orNone(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
