package uplink_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/node/internal/testutil"
	"github.com/hashfleet/hashfleet/node/uplink"
	"google.golang.org/grpc"
)

// authorizer is a fake session source: each call returns the next token, valid for ttl on the fake clock.
type authorizer struct {
	mu    sync.Mutex
	calls int
	fail  bool
	now   func() time.Time
	ttl   time.Duration
}

func (a *authorizer) authorize(context.Context, *grpc.ClientConn) (uplink.Credential, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls++
	if a.fail {
		return uplink.Credential{}, errors.New("refused")
	}
	return uplink.Credential{Token: fmt.Sprintf("tok-%d", a.calls), Expires: a.now().Add(a.ttl)}, nil
}

func (a *authorizer) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.calls
}

// Each connection opens a session with Authorize and its token goes in the metadata and the hello; the
// session is refreshed on the same connection at RefreshAt of its lifetime, without reconnecting; a
// connection whose session cannot be opened is retried with backoff.
func TestAuthorizeOpensAndRefreshesSessions(t *testing.T) {
	var h *harness
	a := &authorizer{ttl: time.Hour, now: func() time.Time { return h.clk.Now() }}
	ready := make(chan struct{})
	h = newHarness(t, func(c *uplink.Config) {
		c.Authorize = func(ctx context.Context, conn *grpc.ClientConn) (uplink.Credential, error) {
			<-ready // h is assigned
			return a.authorize(ctx, conn)
		}
		c.RefreshAt = 0.5
		c.HeartbeatInterval = 2 * time.Hour // no heartbeat verdicts while the fake clock jumps
	})
	close(ready)
	h.waitUp(1)
	hl := h.gw.Hellos()[0]
	if hl.Auth != "Bearer tok-1" || hl.Msg.GetSessionToken() != "tok-1" {
		t.Fatalf("hello %+v", hl)
	}
	h.clk.Advance(30 * time.Minute)
	testutil.Eventually(t, "the session refreshed", func() bool { return a.count() == 2 })
	if s := h.status(); !s.Up || s.Connects != 1 {
		t.Fatalf("refresh reconnected: %+v", s)
	}
	// A new connection opens a new session.
	a.mu.Lock()
	a.fail = true
	a.mu.Unlock()
	h.gw.DropAll()
	s := h.waitDown()
	h.clk.Advance(h.retryIn(s))
	testutil.Eventually(t, "a refused session to fail the connection", func() bool {
		st := h.status()
		return !st.Up && st.Attempts >= 2
	})
	a.mu.Lock()
	a.fail = false
	a.mu.Unlock()
	h.clk.Advance(h.retryIn(h.status()))
	h.waitUp(2)
	if hl := h.gw.Hellos(); hl[len(hl)-1].Auth == "Bearer tok-1" {
		t.Fatalf("reconnected with the old token: %+v", hl[len(hl)-1])
	}
}
