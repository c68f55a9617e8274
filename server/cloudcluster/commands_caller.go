package cloudcluster

import (
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
	"github.com/hashfleet/hashfleet/actors/clock"
	"google.golang.org/protobuf/proto"
)

// caller makes grain-to-grain requests off the grains' mailboxes: finding a grain (cluster identity lookup,
// possibly activating it on another member) blocks, and a grain must never block in Receive. A fixed pool
// of workers owned by the member takes calls from an unbounded FIFO, retries each (member gone, grain
// moving, the grain answered with an error) with doubling backoff on the business clock until the call's
// deadline, and hands the outcome to the caller's PID as a *callDone when it asked for one.
//
//	OrgGrain ──call(ClusterIssueCommand)──▶ caller ──cluster.Request──▶ NodeGrain (any member)
//	   ▲──────────────callDone──────────────┘
//	NodeGrain ──call(ClusterMinerUpdate)──▶ caller ──cluster.Request──▶ MinerGrain (any member)
type caller struct {
	c       *cluster.Cluster
	system  *actor.ActorSystem
	clk     clock.Clock
	timeout time.Duration // one attempt
	backoff time.Duration // first wait between attempts; doubled up to 8×
	log     *slog.Logger

	mu      sync.Mutex
	queue   []call
	stopped bool
	wake    chan struct{}
	stop    chan struct{}
	wg      sync.WaitGroup
}

// call is one grain request.
type call struct {
	identity, kind string
	msg            proto.Message
	// until: no attempt starts after this instant (business clock).
	until time.Time
	// replyTo gets a *callDone with tag; nil: nobody waits for the outcome.
	replyTo *actor.PID
	tag     any
}

// callDone is a call's outcome: the grain's answer, or the last error once the deadline passed.
type callDone struct {
	tag any
	res any
	err error
}

// errorReply is an answer that carries a refusal the grain may not repeat on a retry (store failure).
type errorReply interface{ GetError() string }

func newCaller(c *cluster.Cluster, system *actor.ActorSystem, cfg Config, log *slog.Logger) *caller {
	return &caller{c: c, system: system, clk: cfg.Clock, timeout: cfg.RequestTimeout, backoff: cfg.ReattachBackoff, log: log,
		wake: make(chan struct{}, 1), stop: make(chan struct{})}
}

// start runs n workers until close.
func (k *caller) start(n int) {
	for range n {
		k.wg.Add(1)
		go k.work()
	}
}

// close stops the workers (a call in flight finishes its attempt first) and drops queued calls.
func (k *caller) close() {
	k.mu.Lock()
	if k.stopped {
		k.mu.Unlock()
		return
	}
	k.stopped = true
	dropped := len(k.queue)
	k.queue = nil
	close(k.stop)
	k.mu.Unlock()
	k.wg.Wait()
	if dropped > 0 {
		k.log.Info("grain calls dropped at stop", slog.Int("calls", dropped))
	}
}

// Go queues c; false when the caller is stopped.
func (k *caller) Go(c call) bool {
	k.mu.Lock()
	if k.stopped {
		k.mu.Unlock()
		return false
	}
	k.queue = append(k.queue, c)
	k.mu.Unlock()
	select {
	case k.wake <- struct{}{}:
	default:
	}
	return true
}

func (k *caller) next() (call, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.queue) == 0 {
		return call{}, false
	}
	c := k.queue[0]
	k.queue[0] = call{}
	k.queue = k.queue[1:]
	if len(k.queue) > 0 {
		select { // another worker may take the next one
		case k.wake <- struct{}{}:
		default:
		}
	}
	return c, true
}

func (k *caller) work() {
	defer k.wg.Done()
	for {
		c, ok := k.next()
		if !ok {
			select {
			case <-k.stop:
				return
			case <-k.wake:
				continue
			}
		}
		res, err := k.do(c)
		if err != nil {
			k.log.Warn("grain call gave up", slog.String("kind", c.kind), slog.String("identity", c.identity),
				slog.String("type", fmt.Sprintf("%T", c.msg)), slog.Any("err", err))
		}
		if c.replyTo != nil {
			k.system.Root.Send(c.replyTo, &callDone{tag: c.tag, res: res, err: err})
		}
	}
}

// do tries c until it is answered without an error or its deadline passes.
func (k *caller) do(c call) (any, error) {
	wait := k.backoff
	for attempt := 1; ; attempt++ {
		res, err := k.c.Request(c.identity, c.kind, c.msg, cluster.WithTimeout(k.timeout))
		switch {
		case err != nil:
			err = fmt.Errorf("%w: %s %s (attempt %d): %w", ErrRequest, c.kind, c.identity, attempt, err)
		case res == nil:
			err = fmt.Errorf("%w: %s %s (attempt %d): no answer", ErrRequest, c.kind, c.identity, attempt)
		default:
			if e, ok := res.(errorReply); !ok || e.GetError() == "" {
				return res, nil
			}
			err = fmt.Errorf("%w: %s %s (attempt %d): %s", ErrRequest, c.kind, c.identity, attempt, res.(errorReply).GetError())
		}
		if !k.clk.Now().Add(wait).Before(c.until) {
			return res, err
		}
		t := k.clk.NewTimer(wait)
		select {
		case <-k.stop:
			t.Stop()
			return res, fmt.Errorf("%w: member stopping", err)
		case <-t.C():
		}
		wait = min(2*wait, 8*k.backoff)
	}
}
