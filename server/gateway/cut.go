package gateway

import (
	"log/slog"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Cutting a node off (revocation). The registry refuses a revoked node's next session and stream; CutNode
// ends the streams it has open now: every stream's session watch fires at once and ends the stream with
// PermissionDenied, and the node's session tokens are no longer taken in frames (a refresh racing the cut
// cannot extend them). The cut lasts for the life of the process; after a restart the registry's revoked
// record refuses the node the same way. Without session checking (Config.Sessions nil) streams have no watch
// and CutNode ends nothing: it reports how many streams it ended.

// CutNode ends every open stream of node now (reason goes to the node and the log) and returns how many
// streams it signalled.
func (g *Gateway) CutNode(node, reason string) int {
	ws := g.sess.cutNode(node, reason)
	for _, w := range ws {
		w.timer.Reset(0)
	}
	g.log.Warn("node cut off: ending its open streams", slog.String("node", node), slog.String("reason", reason),
		slog.Int("streams", len(ws)))
	return len(ws)
}

// cutNode marks node cut, forgets its session, and returns its open watches.
func (s *sessions) cutNode(node, reason string) []*sessionWatch {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cut == nil {
		s.cut = map[string]string{}
	}
	s.cut[node] = reason
	delete(s.until, node)
	delete(s.last, node)
	out := make([]*sessionWatch, 0, len(s.watches[node]))
	for w := range s.watches[node] {
		out = append(out, w)
	}
	return out
}

// cutReason reports whether node was cut, and why.
func (s *sessions) cutReason(node string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.cut[node]
	return r, ok
}

// track registers an armed watch so CutNode can fire it.
func (s *sessions) track(w *sessionWatch) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.watches == nil {
		s.watches = map[string]map[*sessionWatch]struct{}{}
	}
	if s.watches[w.node] == nil {
		s.watches[w.node] = map[*sessionWatch]struct{}{}
	}
	s.watches[w.node][w] = struct{}{}
}

// untrack forgets a stopped watch.
func (s *sessions) untrack(w *sessionWatch) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.watches[w.node], w)
	if len(s.watches[w.node]) == 0 {
		delete(s.watches, w.node)
	}
}

// cutError is the status that ends a cut node's stream.
func (w *sessionWatch) cutError(kind, reason string) error {
	w.g.cfg.Metrics.reject(kind, "node_cut")
	w.g.log.Warn("node cut off; ending stream", "node", w.node, "stream", kind, "reason", reason)
	return status.Errorf(codes.PermissionDenied, "node %s cut off: %s", w.node, reason)
}
