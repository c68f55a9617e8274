package discovery

import (
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashfleet/hashfleet/actors"
	"github.com/hashfleet/hashfleet/messages/pb"
)

// actorHarness runs one DiscoveryActor with a subscriber and a listener that collect what it reports.
type actorHarness struct {
	t        *testing.T
	sys      *actor.ActorSystem
	pid      *actor.PID
	sub, lis *actor.PID
	subMsgs  chan any
	lisMsgs  chan any
}

func newActorHarness(t *testing.T, cfg Config) *actorHarness {
	t.Helper()
	s, err := NewScanner(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := &actorHarness{t: t, sys: actors.NewSystem(quiet), subMsgs: make(chan any, 1024), lisMsgs: make(chan any, 1024)}
	collect := func(ch chan any) *actor.PID {
		return h.sys.Root.Spawn(actor.PropsFromFunc(func(c actor.Context) {
			switch m := c.Message().(type) {
			case *ScanProgress, *ScanFinished:
				ch <- m
			}
		}))
	}
	h.sub, h.lis = collect(h.subMsgs), collect(h.lisMsgs)
	h.pid = h.sys.Root.Spawn(actors.Props("discovery", nil, Producer(Env{Scanner: s, Listener: h.lis})))
	t.Cleanup(func() {
		_ = h.sys.Root.StopFuture(h.pid).Wait()
		h.sys.Shutdown()
	})
	return h
}

func ask[T any](h *actorHarness, msg any) (T, error) {
	return actors.Request[T](h.sys.Root, h.pid, msg, 5*time.Second)
}

// finished waits for the ScanFinished of id on ch, returning the progress messages seen before it.
func (h *actorHarness) finished(ch chan any, id string) (*ScanFinished, []*ScanProgress) {
	h.t.Helper()
	var progress []*ScanProgress
	timeout := time.After(30 * time.Second)
	for {
		select {
		case m := <-ch:
			switch m := m.(type) {
			case *ScanProgress:
				if m.ScanID == id {
					progress = append(progress, m)
				}
			case *ScanFinished:
				if m.Status.ScanID == id {
					return m, progress
				}
			}
		case <-timeout:
			h.t.Fatalf("no ScanFinished for %s", id)
		}
	}
}

func TestActorScanReportsAndAnswersStatus(t *testing.T) {
	f := startSite(t, "127.42.4.1", 2, 2, 1)
	h := newActorHarness(t, testConfig())
	started, err := ask[*ScanStarted](h, &StartScan{Request: Request{ScanID: "s1", Targets: []string{siteRange(f, 2)}, Antminer: antCreds}, Subscriber: h.sub})
	if err != nil {
		t.Fatal(err)
	}
	if started.ScanID != "s1" || started.Total != 9 || started.Targets != "127.42.3.255-127.42.4.7" {
		t.Fatalf("started %+v", started)
	}
	fin, progress := h.finished(h.subMsgs, "s1")
	if len(progress) == 0 {
		t.Error("no progress reported before the end")
	}
	st := fin.Status
	if st.State != ScanDone || st.Progress.Probed != 9 || st.Progress.Found != 5 || len(st.Found) != 5 || len(st.Errors) != 0 ||
		st.Finished.Before(st.Started) || st.Err != "" {
		t.Fatalf("finished %+v", st)
	}
	if lf, _ := h.finished(h.lisMsgs, "s1"); lf.Status.State != ScanDone {
		t.Fatalf("listener got %+v", lf.Status)
	}
	want := byAddress(f.Devices())
	for _, fd := range st.Found {
		d := fd.Device
		w := want[netip.MustParseAddrPort(d.GetAddress()).Addr()]
		if w == nil || w.GetProtocol() != d.GetProtocol() || w.GetSerial() != d.GetSerial() {
			t.Errorf("found %v, want %v", d, w)
		}
	}

	for _, id := range []string{"s1", ""} {
		s, err := ask[*ScanStatus](h, &StatusRequest{ScanID: id})
		if err != nil || s.ScanID != "s1" || s.State != ScanDone || len(s.Found) != 5 {
			t.Errorf("status %q: %+v %v", id, s, err)
		}
	}
	list, err := ask[*ScanList](h, &ListScans{})
	if err != nil || len(list.Scans) != 1 || list.Scans[0].Found != nil || list.Scans[0].Progress.Found != 5 {
		t.Errorf("list: %+v %v", list, err)
	}
	if _, err := ask[*ScanStarted](h, &StartScan{Request: Request{ScanID: "s1", Targets: []string{"127.42.4.1"}}}); !errors.Is(err, ErrScanExists) {
		t.Errorf("same id again: %v", err)
	}
	if _, err := ask[*ScanStarted](h, &StartScan{Request: Request{Targets: []string{"8.8.8.8", "nonsense"}}}); !errors.Is(err, ErrRefusedAddress) || !errors.Is(err, ErrBadTarget) {
		t.Errorf("bad targets: %v", err)
	}
	if _, err := ask[*ScanStatus](h, &StatusRequest{ScanID: "nope"}); !errors.Is(err, ErrUnknownScan) {
		t.Errorf("unknown status: %v", err)
	}
	if _, err := ask[*ScanStatus](h, &CancelScan{ScanID: "nope"}); !errors.Is(err, ErrUnknownScan) {
		t.Errorf("unknown cancel: %v", err)
	}
	// Cancelling a finished scan changes nothing.
	if s, err := ask[*ScanStatus](h, &CancelScan{ScanID: "s1"}); err != nil || s.State != ScanDone {
		t.Errorf("cancel finished: %+v %v", s, err)
	}
	// An unnamed scan gets an id.
	s2, err := ask[*ScanStarted](h, &StartScan{Request: Request{Targets: []string{"127.42.4.200"}, Protocols: []pb.Protocol{pb.Protocol_PROTOCOL_CGMINER}}})
	if err != nil || s2.ScanID == "" {
		t.Fatalf("unnamed scan: %+v %v", s2, err)
	}
	if fin, _ := h.finished(h.lisMsgs, s2.ScanID); fin.Status.State != ScanDone || len(fin.Status.Found) != 0 {
		t.Errorf("empty scan: %+v", fin.Status)
	}
}

// slowTargets holds count addresses from 127.42.5.1 whose CGMiner port accepts and never answers.
func slowTargets(t *testing.T, count int) string {
	hs := newHostile(t)
	for i := 1; i <= count; i++ {
		hs.tcp(fmt.Sprintf("127.42.5.%d", i), testAPIPort, holdOpen)
	}
	return fmt.Sprintf("127.42.5.1-%d", count)
}

func TestActorBusyAndCancel(t *testing.T) {
	cfg := testConfig()
	cfg.Concurrency, cfg.ProbeTimeout = 2, 5*time.Second
	h := newActorHarness(t, cfg)
	targets := slowTargets(t, 16)
	if _, err := ask[*ScanStarted](h, &StartScan{Request: Request{ScanID: "long", Targets: []string{targets}}, Subscriber: h.sub}); err != nil {
		t.Fatal(err)
	}
	if _, err := ask[*ScanStarted](h, &StartScan{Request: Request{ScanID: "other", Targets: []string{"127.42.5.200"}}}); !errors.Is(err, ErrBusy) {
		t.Fatalf("second scan while one runs: %v, want ErrBusy", err)
	}
	st, err := ask[*ScanStatus](h, &StatusRequest{ScanID: "long"})
	if err != nil || st.State != ScanRunning || st.Progress.Total != 16 {
		t.Fatalf("status while running: %+v %v", st, err)
	}
	st, err = ask[*ScanStatus](h, &CancelScan{ScanID: "long"})
	if err != nil || (st.State != ScanCanceling && st.State != ScanCanceled) {
		t.Fatalf("cancel: %+v %v", st, err)
	}
	fin, _ := h.finished(h.subMsgs, "long")
	if fin.Status.State != ScanCanceled || fin.Status.Progress.Probed >= 16 {
		t.Fatalf("after cancel: %+v", fin.Status)
	}
	if _, err := ask[*ScanStarted](h, &StartScan{Request: Request{ScanID: "other", Targets: []string{"127.42.5.200"}}}); err != nil {
		t.Fatalf("scan after cancel: %v", err)
	}
}

func TestActorStopCancelsScans(t *testing.T) {
	cfg := testConfig()
	cfg.Concurrency, cfg.ProbeTimeout = 2, 5*time.Second
	h := newActorHarness(t, cfg)
	if _, err := ask[*ScanStarted](h, &StartScan{Request: Request{ScanID: "long", Targets: []string{slowTargets(t, 16)}}}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := h.sys.Root.StopFuture(h.pid).Wait(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("stopping took %v", d)
	}
	// goleak (TestMain) checks the scan's goroutines are gone.
}

func TestActorForgetsOldScans(t *testing.T) {
	cfg := testConfig()
	cfg.KeepScans = 2
	h := newActorHarness(t, cfg)
	for i := range 3 {
		id := fmt.Sprintf("q%d", i)
		if _, err := ask[*ScanStarted](h, &StartScan{Request: Request{ScanID: id, Targets: []string{"127.42.6.1"}}, Subscriber: h.sub}); err != nil {
			t.Fatal(err)
		}
		h.finished(h.subMsgs, id)
	}
	list, err := ask[*ScanList](h, &ListScans{})
	if err != nil || len(list.Scans) != 2 || list.Scans[0].ScanID != "q1" || list.Scans[1].ScanID != "q2" {
		t.Fatalf("list: %+v %v", list, err)
	}
	if _, err := ask[*ScanStatus](h, &StatusRequest{ScanID: "q0"}); !errors.Is(err, ErrUnknownScan) {
		t.Fatalf("forgotten scan: %v", err)
	}
}
