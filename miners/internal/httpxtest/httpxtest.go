// Package httpxtest holds what the tests of the web drivers (miners/antminer, miners/proto) share: a
// simulated fleet with drivers of its miners, closed when the test ends, and the hostile web faults every
// driver must survive.
package httpxtest

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners"
	"github.com/hashfleet/hashfleet/miners/internal/simtest"
	"github.com/hashfleet/hashfleet/miners/sim/antweb"
)

// Ctx returns a context that ends after 10s or with the test.
func Ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

// Exec executes spec on d, failing the test on an error, and returns the outcome.
func Exec(t testing.TB, d miners.Driver, spec *pb.CommandSpec) string {
	t.Helper()
	msg, err := d.Execute(Ctx(t), spec)
	if err != nil {
		t.Fatalf("%v: %v", spec.GetAction(), err)
	}
	return msg
}

// NewDriver returns a driver for dev made by newDriver from cfg, changed by each of mods that is not nil
// in turn. The driver is closed when the test ends.
func NewDriver[C any, D miners.Driver](t testing.TB, newDriver func(*pb.Device, C) (D, error), dev *pb.Device, cfg C, mods ...func(*C)) D {
	t.Helper()
	for _, mod := range mods {
		if mod != nil {
			mod(&cfg)
		}
	}
	d, err := newDriver(dev, cfg)
	if err != nil {
		t.Fatalf("new driver: %v", err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

// Elsewhere starts a server on another host:port for redirect faults to point at, closed when the test
// ends. hits counts the requests it got: a driver must never follow a redirect there.
func Elsewhere(t testing.TB) (url string, hits func() int32) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { n.Add(1) }))
	t.Cleanup(srv.Close)
	return srv.URL, n.Load
}

// Fault is the web simulators' fault; antweb and protorig share the type.
type Fault = antweb.Fault

// Hostile lists the web faults every HTTP driver must survive and the error each must come back as (nil:
// none), with a text the error must contain, under a simulator whose SlowByteDelay and RequestTimeout make a
// slow reply time out.
var Hostile = []struct {
	Fault Fault
	Want  error
	Text  string
}{
	{antweb.FaultMalformedJSON, miners.ErrMalformed, "invalid JSON"},
	{antweb.FaultHugeBody, miners.ErrMalformed, "exceeds"},
	{antweb.FaultSlow, miners.ErrUnreachable, "timed out"},
	{antweb.FaultHang, miners.ErrUnreachable, "timed out"},
	{antweb.FaultRedirect, miners.ErrMalformed, "redirect to"},
	{antweb.FaultDown, miners.ErrUnreachable, ""},
	{antweb.FaultWrongContentType, nil, ""},
}

// RunHostile sets each Hostile fault in turn with setFault (clearing it after) and checks what call, named
// what, comes back with, within 3s; after, when not nil, runs while a fault that fails call is still set.
func RunHostile(t *testing.T, setFault func(Fault) error, what string, call func(context.Context) error, after func(*testing.T)) {
	for _, tc := range Hostile {
		t.Run(tc.Fault.String(), func(t *testing.T) {
			if err := setFault(tc.Fault); err != nil {
				t.Fatal(err)
			}
			defer setFault(antweb.FaultNone)
			start := time.Now()
			err := call(Ctx(t))
			if tc.Want == nil {
				if err != nil {
					t.Fatalf("%s: %v", what, err)
				}
				return
			}
			if !errors.Is(err, tc.Want) || !strings.Contains(err.Error(), tc.Text) {
				t.Fatalf("%s: %v, want %v containing %q", what, err, tc.Want, tc.Text)
			}
			if el := time.Since(start); el > 3*time.Second {
				t.Fatalf("took %v", el)
			}
			if after != nil {
				after(t)
			}
		})
	}
}

// Fleet is what a simulated fleet of miners M offers the driver tests.
type Fleet[M any] interface {
	Devices() []*pb.Device
	Miner(id string) M
	ClientTLS() *tls.Config
	Close() error
}

// Harness is a simulated fleet F of miners M on a fake clock, and drivers D, configured by C, of them.
type Harness[F Fleet[M], M any, C any, D miners.Driver] struct {
	*simtest.Harness[F]
	newDriver func(*pb.Device, C) (D, error)
	config    C
	setup     func(*C, *clock.Fake)
}

// Start starts a fleet as simtest.Start does; Harness.Driver makes drivers with newDriver from config, set up
// by setup for the harness's clock.
func Start[F Fleet[M], M any, FC any, C any, D miners.Driver](t *testing.T,
	start func(FC) (F, error), fleetConfig FC, fleetSetup func(*FC, *clock.Fake), mod func(*FC),
	newDriver func(*pb.Device, C) (D, error), config C, setup func(*C, *clock.Fake),
) *Harness[F, M, C, D] {
	t.Helper()
	return &Harness[F, M, C, D]{Harness: simtest.Start(t, start, fleetConfig, fleetSetup, mod), newDriver: newDriver, config: config, setup: setup}
}

// Driver returns a driver of miner i, its config changed by mod when not nil, and the simulated miner.
func (h *Harness[F, M, C, D]) Driver(i int, mod func(*C)) (D, M) {
	h.T.Helper()
	dev := h.Fleet.Devices()[i]
	d := NewDriver(h.T, h.newDriver, dev, h.config, func(c *C) { h.setup(c, h.Clock) }, mod)
	return d, h.Fleet.Miner(dev.MinerId)
}
