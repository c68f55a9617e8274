package gateway

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashfleet/hashfleet/actors"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/server/grains"
	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// protoactor's dead-letter throttle sleeps one interval (1s) in a goroutine of its own that Shutdown does
		// not stop; it ends by itself. Its name depends on inlining.
		goleak.IgnoreAnyFunction("github.com/asynkron/protoactor-go/actor.NewThrottle.func1"),
		goleak.IgnoreAnyFunction("github.com/asynkron/protoactor-go/actor.NewDeadLetter.NewThrottle.func4.1"),
	)
}

func TestTrustNodeMetadata(t *testing.T) {
	auth := TrustNodeMetadata()
	ctx := func(vals ...string) context.Context {
		md := metadata.MD{}
		for _, v := range vals {
			md.Append(MetadataNode, v)
		}
		return metadata.NewIncomingContext(context.Background(), md)
	}
	if id, err := auth.Authenticate(ctx("n1")); err != nil || id != "n1" {
		t.Fatalf("n1: %q %v", id, err)
	}
	for name, c := range map[string]context.Context{
		"none": context.Background(), "empty": ctx(""), "twice": ctx("a", "b"), "slash": ctx("a/b"),
	} {
		if _, err := auth.Authenticate(c); status.Code(err) != codes.Unauthenticated {
			t.Errorf("%s: %v, want Unauthenticated", name, err)
		}
	}
	if _, err := RejectAll().Authenticate(ctx("n1")); status.Code(err) != codes.Unauthenticated || !strings.Contains(err.Error(), ErrNotEnrolled.Error()) {
		t.Errorf("RejectAll: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err == nil || !strings.Contains(err.Error(), "Authenticator") {
		t.Fatalf("no authenticator: %v", err)
	}
	c := DefaultConfig()
	c.Authenticator, c.MaxRecvMsgSize = TrustNodeMetadata(), 10
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "MaxRecvMsgSize") {
		t.Fatalf("tiny frames: %v", err)
	}
	if len(ServerOptions(DefaultConfig())) == 0 {
		t.Fatal("no server options")
	}
}

// probe records what a NodeSession sends its Node actor.
type probe struct {
	mu   sync.Mutex
	msgs []any
}

func (p *probe) Receive(ctx actor.Context) {
	switch ctx.Message().(type) {
	case *actor.Started, *actor.Stopping, *actor.Stopped:
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.msgs = append(p.msgs, ctx.Message())
}

func (p *probe) has(pred func(any) bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range p.msgs {
		if pred(m) {
			return true
		}
	}
	return false
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 3s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// A node that does not read its stream loses it: the session closes the bridge with ResourceExhausted and
// detaches from its Node actor.
func TestSessionClosesWhenNodeDoesNotRead(t *testing.T) {
	sys := actors.NewSystem(nil)
	defer sys.Shutdown()
	p := &probe{}
	node := sys.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return p }))
	b := newBridge(1)
	session := sys.Root.Spawn(actor.PropsFromProducer(func() actor.Actor {
		return newNodeSession("n1", node, &pb.ControlHello{NodeId: "n1"}, b, nopLogger(), nil)
	}))
	waitFor(t, func() bool { return p.has(func(m any) bool { _, ok := m.(*grains.AttachSession); return ok }) }, "attach")
	frame := &pb.CloudToNode{Msg: &pb.CloudToNode_Command{Command: &pb.ControlCommand{}}}
	sys.Root.Send(session, &grains.SendFrame{Frame: frame})
	sys.Root.Send(session, &grains.SendFrame{Frame: frame})
	select {
	case <-b.done:
	case <-time.After(3 * time.Second):
		t.Fatal("bridge not closed")
	}
	if status.Code(b.err) != codes.ResourceExhausted {
		t.Fatalf("bridge error %v", b.err)
	}
	waitFor(t, func() bool { return p.has(func(m any) bool { _, ok := m.(*grains.DetachSession); return ok }) }, "detach")
	_ = sys.Root.StopFuture(node).Wait()
}

func nopLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestBearerAuthenticator(t *testing.T) {
	auth := BearerAuthenticator(func(tok string) (string, error) {
		if tok == "good-n1" {
			return "n1", nil
		}
		return "", errors.New("expired")
	})
	ctx := func(node, authz string) context.Context {
		md := metadata.Pairs(MetadataNode, node)
		if authz != "" {
			md.Append("authorization", authz)
		}
		return metadata.NewIncomingContext(context.Background(), md)
	}
	if id, err := auth.Authenticate(ctx("n1", "Bearer good-n1")); err != nil || id != "n1" {
		t.Fatalf("good token: %q %v", id, err)
	}
	for name, c := range map[string]context.Context{
		"no token": ctx("n1", ""), "bad scheme": ctx("n1", "Basic good-n1"), "bad token": ctx("n1", "Bearer nope"),
		"other node": ctx("n2", "Bearer good-n1"),
	} {
		if _, err := auth.Authenticate(c); status.Code(err) != codes.Unauthenticated {
			t.Errorf("%s: %v, want Unauthenticated", name, err)
		}
	}
}
