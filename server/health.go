package server

import (
	"context"
	"errors"
	"fmt"
)

// The server's readiness, for the metrics server's /readyz (bootstrap registers each as a named check):
// a server is ready when its store answers, its actors answer, and its gateway accepts node streams.

// ErrNotReady: a readiness check failed.
var ErrNotReady = errors.New("server not ready")

// CheckStore reports whether the store is open and answers a read.
func (s *Server) CheckStore(context.Context) error {
	if err := s.store.Ping(); err != nil {
		return fmt.Errorf("%w: store: %w", ErrNotReady, err)
	}
	return nil
}

// CheckActors reports whether the fleet's actors are started and answer (the read model answers a query).
func (s *Server) CheckActors(ctx context.Context) error {
	s.mu.Lock()
	started, stopped := s.started, s.stopped
	s.mu.Unlock()
	switch {
	case stopped:
		return fmt.Errorf("%w: stopped", ErrNotReady)
	case !started:
		return fmt.Errorf("%w: actors not started yet", ErrNotReady)
	}
	if _, err := s.fleet.Nodes(ctx); err != nil {
		return fmt.Errorf("%w: actors: %w", ErrNotReady, err)
	}
	return nil
}

// CheckGateway reports whether the gateway accepts node streams: not draining (a server that drains is
// stopping, or handing its nodes over; load balancers should send them elsewhere).
func (s *Server) CheckGateway(context.Context) error {
	if s.gw.Draining() {
		return fmt.Errorf("%w: gateway draining: node streams are refused", ErrNotReady)
	}
	return nil
}
