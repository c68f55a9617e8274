package actortest

import (
	"runtime"
	"strings"
	"testing"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashfleet/hashfleet/actors"
	"go.uber.org/goleak"
)

// TestLeakOptionsCoverTheDeadLetterThrottle makes protoactor start its dead-letter throttle goroutine and
// checks that LeakOptions ignore exactly it: goleak without the options must see it (so the options are not
// dead), with them must not (so the names match this protoactor version and build).
func TestLeakOptionsCoverTheDeadLetterThrottle(t *testing.T) {
	sys := actors.NewSystem(nil)
	pid := sys.Root.Spawn(actor.PropsFromFunc(func(actor.Context) {}))
	if err := sys.Root.StopFuture(pid).Wait(); err != nil {
		t.Fatal(err)
	}
	sys.Root.Send(pid, "late") // a dead letter
	sys.Shutdown()
	buf := make([]byte, 1<<20)
	stacks := string(buf[:runtime.Stack(buf, true)])
	if !strings.Contains(stacks, "actor.NewDeadLetter.NewThrottle.func4.1") && !strings.Contains(stacks, "actor.NewThrottle.func1") {
		t.Fatalf("no throttle goroutine under the names LeakOptions ignore; protoactor changed?\n%s", stacks)
	}
	if err := goleak.Find(LeakOptions()...); err != nil {
		t.Fatalf("LeakOptions miss protoactor's throttle goroutine: %v", err)
	}
}
