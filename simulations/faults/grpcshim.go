package faults

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Flow picks the messages a Policy applies to, seen from the side the interceptor is installed on.
type Flow uint8

const (
	// Send: the messages this side sends.
	Send Flow = 1 << iota
	// Recv: the messages this side receives.
	Recv
	// SendRecv: both.
	SendRecv = Send | Recv
)

// DefaultReorderWindow is how long a message held for reordering waits for the next one.
const DefaultReorderWindow = 50 * time.Millisecond

// Policy is what a Shim does to messages. Probabilities are per message, drawn from the stream's seeded
// generator; the zero Policy passes everything.
type Policy struct {
	// Methods limits the policy to these full method names ("/hashfleet.v1.Gateway/ControlStream");
	// empty means every method.
	Methods []string
	// On picks sent or received messages (streams only); 0 means both.
	On Flow
	// Delay holds each message Delay ± Jitter before it is delivered (streams keep their order).
	Delay, Jitter time.Duration
	// Drop is the probability that a message fails its stream instead of arriving: the call fails with
	// codes.Unavailable (wrapping ErrInjected), the client's stream context is cancelled, and every later
	// Send/Recv on it fails. HTTP/2 is reliable, so a lost message means a broken stream.
	Drop float64
	// Duplicate is the probability that a message arrives twice (a unary call is made twice).
	Duplicate float64
	// Reorder is the probability that a stream message is held back and delivered after the next one, or
	// on its own after ReorderWindow when no next one comes.
	Reorder float64
	// ReorderWindow: default DefaultReorderWindow.
	ReorderWindow time.Duration
}

// Validate reports a policy that cannot be applied.
func (p Policy) Validate() error {
	var errs []error
	for name, v := range map[string]float64{"drop": p.Drop, "duplicate": p.Duplicate, "reorder": p.Reorder} {
		if v < 0 || v > 1 {
			errs = append(errs, fmt.Errorf("faults: %s probability %v is not in [0, 1]", name, v))
		}
	}
	if p.Delay < 0 || p.Jitter < 0 || p.ReorderWindow < 0 {
		errs = append(errs, fmt.Errorf("faults: delay %s, jitter %s and reorder window %s must not be negative", p.Delay, p.Jitter, p.ReorderWindow))
	}
	return errors.Join(errs...)
}

func (p Policy) applies(method string, f Flow) bool {
	if len(p.Methods) > 0 && !slices.Contains(p.Methods, method) {
		return false
	}
	return p.On == 0 || p.On&f != 0
}

// ShimStats counts what a Shim did.
type ShimStats struct {
	Delayed, Dropped, Duplicated, Reordered int64
}

// Shim injects message-level faults into gRPC calls through interceptors, on the client (the node's
// uplink) or the server (the gateway), so the gateway's deduplication and ordering can be tested without
// touching bytes on the wire. Set switches the policy at run time; it applies to open streams from their
// next message.
//
// Each stream draws from its own generator, seeded by the Shim's seed, the method and the stream's index
// among that method's streams, and draws the same numbers per message whatever the policy: a given seed
// applies the same decisions to the same sequence of messages. (Concurrent streams of one method get their
// indexes in the order they open, and unary calls share one generator, so only what is sequential is
// reproducible.)
//
// A wrapped stream reads ahead with one goroutine (so a message held for reordering can be released when
// no next one comes); it ends when the stream ends. Wait blocks until every such goroutine ended.
type Shim struct {
	seed int64

	mu      sync.Mutex
	policy  Policy
	streams map[string]uint64
	unary   *rand.Rand
	wg      sync.WaitGroup

	delayed, dropped, duplicated, reordered atomic.Int64
}

// NewShim returns a Shim passing everything until Set.
func NewShim(seed int64) *Shim {
	return &Shim{seed: seed, streams: map[string]uint64{}, unary: rand.New(rand.NewPCG(uint64(seed), 0x756e617279))}
}

// Set switches the policy.
func (s *Shim) Set(p Policy) error {
	if err := p.Validate(); err != nil {
		return err
	}
	if p.ReorderWindow == 0 {
		p.ReorderWindow = DefaultReorderWindow
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.policy = p
	return nil
}

// Policy returns the current policy.
func (s *Shim) Policy() Policy {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.policy
}

// Stats returns the counters so far.
func (s *Shim) Stats() ShimStats {
	return ShimStats{Delayed: s.delayed.Load(), Dropped: s.dropped.Load(), Duplicated: s.duplicated.Load(), Reordered: s.reordered.Load()}
}

// Wait blocks until the read-ahead goroutine of every stream the Shim wrapped has ended (their streams
// ended).
func (s *Shim) Wait() { s.wg.Wait() }

// DialOptions installs the Shim on a client.
func (s *Shim) DialOptions() []grpc.DialOption {
	return []grpc.DialOption{grpc.WithChainUnaryInterceptor(s.UnaryClientInterceptor()), grpc.WithChainStreamInterceptor(s.StreamClientInterceptor())}
}

// ServerOptions installs the Shim on a server.
func (s *Shim) ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{grpc.ChainUnaryInterceptor(s.UnaryServerInterceptor()), grpc.ChainStreamInterceptor(s.StreamServerInterceptor())}
}

// decision is one message's draws.
type decision struct {
	drop, dup, reorder bool
	delay              time.Duration
}

// draw takes four numbers from rng whatever the policy, so decisions stay aligned with message indexes
// when the policy changes.
func draw(rng *rand.Rand, p Policy) decision {
	a, b, c, j := rng.Float64(), rng.Float64(), rng.Float64(), rng.Float64()
	d := decision{drop: a < p.Drop, dup: b < p.Duplicate, reorder: c < p.Reorder, delay: p.Delay}
	if p.Jitter > 0 {
		d.delay += time.Duration((2*j - 1) * float64(p.Jitter))
	}
	d.delay = max(d.delay, 0)
	return d
}

func injected(what string) error {
	return status.Error(codes.Unavailable, fmt.Sprintf("%v: %s", ErrInjected, what))
}

// IsInjected reports whether err is a failure the Shim injected (also after it crossed the wire as a
// status).
func IsInjected(err error) bool {
	if errors.Is(err, ErrInjected) {
		return true
	}
	st, ok := status.FromError(err)
	return ok && st.Code() == codes.Unavailable && strings.HasPrefix(st.Message(), ErrInjected.Error())
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Shim) unaryDecision(method string) (Policy, decision, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.policy
	d := draw(s.unary, p)
	return p, d, p.applies(method, SendRecv)
}

// UnaryClientInterceptor delays, fails or doubles unary calls.
func (s *Shim) UnaryClientInterceptor() grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		_, d, ok := s.unaryDecision(method)
		if !ok {
			return invoker(ctx, method, req, reply, cc, opts...)
		}
		if d.delay > 0 {
			s.delayed.Add(1)
			if err := sleepCtx(ctx, d.delay); err != nil {
				return err
			}
		}
		if d.drop {
			s.dropped.Add(1)
			return injected("unary call dropped")
		}
		if d.dup {
			s.duplicated.Add(1)
			_ = invoker(ctx, method, req, reply, cc, opts...)
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
}

// UnaryServerInterceptor delays, fails or doubles unary calls (the handler runs twice; the second answer
// is returned).
func (s *Shim) UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		_, d, ok := s.unaryDecision(info.FullMethod)
		if !ok {
			return handler(ctx, req)
		}
		if d.delay > 0 {
			s.delayed.Add(1)
			if err := sleepCtx(ctx, d.delay); err != nil {
				return nil, err
			}
		}
		if d.drop {
			s.dropped.Add(1)
			return nil, injected("unary call dropped")
		}
		if d.dup {
			s.duplicated.Add(1)
			_, _ = handler(ctx, req)
		}
		return handler(ctx, req)
	}
}

// StreamClientInterceptor wraps client streams.
func (s *Shim) StreamClientInterceptor() grpc.StreamClientInterceptor {
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		ctx, cancel := context.WithCancel(ctx)
		cs, err := streamer(ctx, desc, cc, method, opts...)
		if err != nil {
			cancel()
			return nil, err
		}
		w := &clientStream{ClientStream: cs}
		w.core = s.newCore(ctx, method, cs.SendMsg, cs.RecvMsg, cancel)
		return w, nil
	}
}

// StreamServerInterceptor wraps server streams. A message held for reordering when the handler returns
// is sent before the stream ends.
func (s *Shim) StreamServerInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		w := &serverStream{ServerStream: ss}
		w.core = s.newCore(ss.Context(), info.FullMethod, ss.SendMsg, ss.RecvMsg, nil)
		err := handler(srv, w)
		w.core.finish()
		return err
	}
}

type clientStream struct {
	grpc.ClientStream
	core *streamCore
}

func (c *clientStream) SendMsg(m any) error { return c.core.send(m) }
func (c *clientStream) RecvMsg(m any) error { return c.core.recv(m) }

// CloseSend sends a held message first.
func (c *clientStream) CloseSend() error {
	c.core.flush()
	return c.ClientStream.CloseSend()
}

type serverStream struct {
	grpc.ServerStream
	core *streamCore
}

func (w *serverStream) SendMsg(m any) error { return w.core.send(m) }
func (w *serverStream) RecvMsg(m any) error { return w.core.recv(m) }

// item is a received message, or the error that ended the stream.
type item struct {
	msg proto.Message
	err error
}

// streamCore applies the policy to one stream's messages.
type streamCore struct {
	s      *Shim
	method string
	ctx    context.Context
	cancel context.CancelFunc // client streams: ends the stream when a drop fails it

	failed atomic.Pointer[error]

	sendMu   sync.Mutex // serializes SendMsg with the reorder flush timer
	sendRaw  func(any) error
	sendRng  *rand.Rand
	held     any
	heldTime *time.Timer
	finished bool

	recvRaw  func(any) error
	recvRng  *rand.Rand
	pumpOnce sync.Once
	in       chan item // from the pump; closed when it ends
	pending  []item    // to deliver before reading more (duplicates, overtaken messages)
	end      error     // the error that ended the stream, once delivered
	passThru bool      // messages are not protobuf: the Shim cannot copy them and steps aside
}

func (s *Shim) newCore(ctx context.Context, method string, send, recv func(any) error, cancel context.CancelFunc) *streamCore {
	h := fnv.New64a()
	h.Write([]byte(method))
	s.mu.Lock()
	idx := s.streams[method]
	s.streams[method]++
	s.mu.Unlock()
	stream := h.Sum64() ^ (idx * 0x9e3779b97f4a7c15)
	return &streamCore{
		s: s, method: method, ctx: ctx, cancel: cancel,
		sendRaw: send, sendRng: rand.New(rand.NewPCG(uint64(s.seed), stream<<1)),
		recvRaw: recv, recvRng: rand.New(rand.NewPCG(uint64(s.seed), stream<<1|1)),
	}
}

func (c *streamCore) err() error {
	if e := c.failed.Load(); e != nil {
		return *e
	}
	return nil
}

// fail breaks the stream: every later call returns err and a client stream is cancelled.
func (c *streamCore) fail(what string) error {
	err := injected(what)
	if c.failed.CompareAndSwap(nil, &err) {
		c.s.dropped.Add(1)
		if c.cancel != nil {
			c.cancel()
		}
	}
	return c.err()
}

func (c *streamCore) decide(rng *rand.Rand, f Flow) (Policy, decision, bool) {
	p := c.s.Policy()
	d := draw(rng, p)
	return p, d, p.applies(c.method, f)
}

func (c *streamCore) send(m any) error {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	if err := c.err(); err != nil {
		return err
	}
	p, d, ok := c.decide(c.sendRng, Send)
	if !ok {
		if err := c.flushLocked(); err != nil {
			return err
		}
		return c.sendRaw(m)
	}
	if d.delay > 0 {
		c.s.delayed.Add(1)
		if err := sleepCtx(c.ctx, d.delay); err != nil {
			return err
		}
	}
	if d.drop {
		return c.fail("stream message dropped (send)")
	}
	if pm, isProto := m.(proto.Message); isProto {
		m = proto.Clone(pm) // the caller may reuse m once SendMsg returns; a held or doubled copy must not change
	}
	if d.reorder && c.held == nil {
		c.s.reordered.Add(1)
		c.held = m
		c.heldTime = time.AfterFunc(p.ReorderWindow, c.flush)
		return nil
	}
	if err := c.sendRaw(m); err != nil {
		return err
	}
	if err := c.flushLocked(); err != nil { // a held message goes after the one that overtook it
		return err
	}
	if d.dup {
		c.s.duplicated.Add(1)
		return c.sendRaw(m)
	}
	return nil
}

// flush sends a held message (after ReorderWindow, at CloseSend, or when the handler returns).
func (c *streamCore) flush() {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	_ = c.flushLocked()
}

func (c *streamCore) flushLocked() error {
	if c.heldTime != nil {
		c.heldTime.Stop()
		c.heldTime = nil
	}
	m := c.held
	c.held = nil
	if m == nil || c.finished {
		return nil
	}
	return c.sendRaw(m)
}

// finish flushes and stops the flush timer: the server handler returned, or the client stream ended.
func (c *streamCore) finish() {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	_ = c.flushLocked()
	c.finished = true
}

// pump reads ahead into c.in until the stream ends, or its context does (a reader that stopped reading).
func (c *streamCore) pump(mt protoreflect.MessageType) {
	defer c.s.wg.Done()
	defer close(c.in)
	for {
		m := mt.New().Interface()
		err := c.recvRaw(m)
		it := item{msg: m}
		if err != nil {
			it = item{err: err}
		}
		select {
		case c.in <- it:
		case <-c.ctx.Done():
			return
		}
		if err != nil {
			if c.cancel != nil { // a client stream whose RecvMsg failed is over: stop the flush timer, release the context
				c.finish()
				c.cancel()
			}
			return
		}
	}
}

// next returns the next message or end from the pump.
func (c *streamCore) next() item {
	if it, ok := <-c.in; ok {
		return it
	}
	if err := c.err(); err != nil {
		return item{err: err}
	}
	if err := c.ctx.Err(); err != nil {
		return item{err: status.FromContextError(err).Err()}
	}
	return item{err: io.EOF}
}

func (c *streamCore) recv(m any) error {
	if err := c.err(); err != nil {
		return err
	}
	if c.end != nil {
		return c.end
	}
	pm, isProto := m.(proto.Message)
	c.pumpOnce.Do(func() {
		if !isProto {
			c.passThru = true
			return
		}
		c.in = make(chan item, 1)
		c.s.wg.Add(1)
		go c.pump(pm.ProtoReflect().Type()) // the type, not pm: the caller reuses pm while the pump runs
	})
	if c.passThru {
		return c.recvRaw(m)
	}
	var it item
	if len(c.pending) > 0 {
		it, c.pending = c.pending[0], c.pending[1:]
	} else {
		it = c.next()
		if it.err == nil {
			var err error
			if it, err = c.perturb(it); err != nil {
				return err
			}
		}
	}
	if it.err != nil {
		c.end = it.err
		return it.err
	}
	proto.Reset(pm)
	proto.Merge(pm, it.msg)
	return nil
}

// perturb applies the policy to a received message and returns what to deliver now; what to deliver
// later goes to c.pending.
func (c *streamCore) perturb(it item) (item, error) {
	p, d, ok := c.decide(c.recvRng, Recv)
	if !ok {
		return it, nil
	}
	if d.delay > 0 {
		c.s.delayed.Add(1)
		if err := sleepCtx(c.ctx, d.delay); err != nil {
			return item{}, err
		}
	}
	if d.drop {
		return item{}, c.fail("stream message dropped (recv)")
	}
	out := it
	if d.reorder {
		t := time.NewTimer(p.ReorderWindow)
		select {
		case nxt := <-c.in:
			if nxt.msg != nil || nxt.err != nil {
				c.s.reordered.Add(1)
				out = nxt
				c.pending = append(c.pending, it)
				if nxt.err != nil { // the stream ended: deliver the held message, then the end
					out, c.pending = it, []item{nxt}
				}
			}
		case <-t.C:
		}
		t.Stop()
	}
	if d.dup && out.msg != nil {
		c.s.duplicated.Add(1)
		c.pending = append([]item{{msg: proto.Clone(out.msg)}}, c.pending...)
	}
	return out, nil
}
