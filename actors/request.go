package actors

import (
	"errors"
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// Request asks pid with msg from outside any actor and waits up to timeout for a reply of type T.
// A reply that is an error is returned as the error. Never call this inside Receive: use ctx.Request with a
// reply case, or ReenterAfter.
func Request[T any](root *actor.RootContext, pid *actor.PID, msg any, timeout time.Duration) (T, error) {
	var zero T
	if pid == nil {
		return zero, fmt.Errorf("request %T: %w", msg, ErrDeadActor)
	}
	res, err := root.RequestFuture(pid, msg, timeout).Result()
	switch {
	case errors.Is(err, actor.ErrTimeout):
		return zero, fmt.Errorf("request %T to %s after %s: %w", msg, pid.Id, timeout, ErrTimeout)
	case errors.Is(err, actor.ErrDeadLetter):
		return zero, fmt.Errorf("request %T to %s: %w", msg, pid.Id, ErrDeadActor)
	case err != nil:
		return zero, fmt.Errorf("request %T to %s: %w", msg, pid.Id, err)
	}
	if e, ok := res.(error); ok {
		return zero, e
	}
	if _, ok := res.(*actor.DeadLetterResponse); ok {
		return zero, fmt.Errorf("request %T to %s: %w", msg, pid.Id, ErrDeadActor)
	}
	v, ok := res.(T)
	if !ok {
		return zero, fmt.Errorf("request %T to %s: got %T, want %T: %w", msg, pid.Id, res, zero, ErrUnexpectedReply)
	}
	return v, nil
}
