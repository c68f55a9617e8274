// Package actors holds the runtime helpers both halves of hashfleet share on top of protoactor-go:
//
//   - supervision.go: a one-for-one strategy that restarts a failing child after an exponential backoff
//     (driven by the injected clock) and stops it after too many restarts in a window;
//   - props.go: the Props builder every actor is spawned with (supervisor, metrics middleware, mailbox stats);
//   - request.go: request/response from outside an actor (HTTP handlers, tests) with a timeout and typed reply;
//   - schedule.go: self-scheduled messages (ticks) on the injected clock, so no goroutine sleeps per actor;
//   - metrics.go: actors alive, restarts and mailbox depth by kind, for Prometheus;
//   - system.go: an ActorSystem with slog logging and clean shutdown.
//
// Business time always comes from actors/clock; protoactor's own timers read the wall clock and decide nothing.
package actors
