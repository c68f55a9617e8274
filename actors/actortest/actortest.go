// Package actortest holds what every test of long-lived actors needs: goroutine-leak checking that knows which goroutines
// protoactor leaves behind on purpose, and polling assertions for asynchronous actors.
package actortest

import (
	"testing"
	"time"

	"go.uber.org/goleak"
)

// LeakOptions are the goroutines a finished test may leave running without it being a leak. There is one:
//
// protoactor's dead-letter throttle (actor/throttler.go, NewThrottle, built by NewDeadLetter) starts a
// goroutine on the first dead letter of a period that waits on a ticker for DeadLetterThrottleInterval (1s by
// default) and cannot be stopped: ActorSystem.Shutdown only closes a channel. Any message to a stopped actor
// (a timer tick racing a stop, a reply to a finished request) starts one, so a test that stops actors may end
// with one alive for up to a second, longer than goleak's retries. The compiler inlines NewThrottle into
// NewDeadLetter, so the goroutine's function is named after both; the plain name is listed too for builds
// without inlining. TestLeakOptionsCoverTheDeadLetterThrottle proves the names against the pinned version.
//
// Future timeouts (actor.NewFuture) are time.AfterFunc timers, not goroutines. Nothing of our own is
// ignored: every goroutine a node component starts must be stopped by its owner.
func LeakOptions() []goleak.Option {
	return []goleak.Option{
		goleak.IgnoreTopFunction("github.com/asynkron/protoactor-go/actor.NewDeadLetter.NewThrottle.func4.1"),
		goleak.IgnoreTopFunction("github.com/asynkron/protoactor-go/actor.NewThrottle.func1"),
	}
}

// VerifyTestMain runs the package's tests and fails the run when goroutines outlive them.
func VerifyTestMain(m *testing.M) {
	goleak.VerifyTestMain(m, LeakOptions()...)
}

// VerifyNone checks for leaked goroutines at the end of one test.
func VerifyNone(t *testing.T) {
	t.Helper()
	goleak.VerifyNone(t, LeakOptions()...)
}

// WaitFor polls cond every few milliseconds until it holds, failing the test after timeout.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// Eventually is WaitFor with a 5s timeout.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	WaitFor(t, 5*time.Second, what, cond)
}
