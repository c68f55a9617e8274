package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// simChildEnv makes the test binary serve a simulated fleet (ServeSim) instead of running tests: the
// out-of-process simulators of these tests are this binary, re-executed.
const simChildEnv = "HASHFLEET_BENCH_SIM_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(simChildEnv) == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
		err := ServeSim(ctx, os.Args[1:], os.Stdout)
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, "sim child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	goleak.VerifyTestMain(m,
		// protoactor's dead-letter throttle goroutine outlives its system by up to a second (see
		// actors/actortest.LeakOptions).
		goleak.IgnoreTopFunction("github.com/asynkron/protoactor-go/actor.NewDeadLetter.NewThrottle.func4.1"),
		goleak.IgnoreTopFunction("github.com/asynkron/protoactor-go/actor.NewThrottle.func1"),
	)
}

// testOptions are options for a small, quick run whose simulators are this test binary, on an address
// range picked at random so that concurrent runs (another package's tests, a bench) do not collide.
func testOptions(t testing.TB, miners int) Options {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return Options{
		Miners:     miners,
		SimCommand: []string{exe},
		SimEnv:     []string{simChildEnv + "=1"},
		FirstNet:   100 + rand.IntN(140),
		Logger:     nil,
	}
}

// relaxed makes the schedule loose enough that a loaded CI machine (and -race) keeps it: 1s polls, a poll
// late only after 2.1s, a short window.
func relaxed(o Options) Options {
	o.Interval, o.Jitter, o.LateSlack = time.Second, 100*time.Millisecond, time.Second
	o.Warmup, o.Duration = 1500*time.Millisecond, 3*time.Second
	return o
}
