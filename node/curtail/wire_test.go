package curtail

import (
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
)

func TestEventFromRequest(t *testing.T) {
	end := time.UnixMilli(1_800_000_000_000)
	e := EventFromRequest(&pb.CurtailRequest{EventId: "e", TargetKw: 12.5, MinerIds: []string{"a"}, EndAtUnixMs: end.UnixMilli()}, "cloud:c1")
	if e.ID != "e" || e.Target != ShedKW(12.5) || !e.End.Equal(end) || len(e.Scope.MinerIDs) != 1 || e.Source != "cloud:c1" {
		t.Fatalf("%+v", e)
	}
	if e := EventFromRequest(&pb.CurtailRequest{EventId: "f", Full: true}, "local"); e.Target != Full() || !e.End.IsZero() || !e.Scope.All() {
		t.Fatalf("%+v", e)
	}
	// Validation is Begin's: a request without a target makes an event Validate refuses.
	if err := EventFromRequest(&pb.CurtailRequest{EventId: "g"}, "x").Validate(); err == nil {
		t.Fatal("no target accepted")
	}
}

func TestStatusProto(t *testing.T) {
	cases := []struct {
		name  string
		s     Status
		state string
		tkw   float64
		akw   float64
	}{
		{"idle", Status{Phase: PhaseIdle}, "idle", 0, 0},
		{"done", Status{Phase: PhaseIdle, Last: &Outcome{EventID: "e"}}, "done", 0, 0},
		{"failed", Status{Phase: PhaseIdle, Last: &Outcome{EventID: "e", NotReleased: []string{"m"}}}, "failed", 0, 0},
		{"scheduled", Status{Phase: PhaseScheduled, Event: Event{ID: "e", Target: ShedKW(3)}}, "scheduled", 3, 0},
		{"ramping", Status{Phase: PhaseCurtailing, Event: Event{ID: "e", Target: ShedKW(3)}, ReducedKW: 1}, "ramping", 3, 1},
		{"holding", Status{Phase: PhaseCurtailing, Achieved: true, Event: Event{ID: "e", Target: LimitKW(7)}, BaselineKW: 10, ReducedKW: 3.2}, "holding", 3, 3.2},
		{"releasing", Status{Phase: PhaseReleasing, Event: Event{ID: "e", Target: Full()}, ReducedKW: -1}, "releasing", 0, 0},
	}
	for _, c := range cases {
		p := StatusProto(c.s)
		if p.GetState() != c.state || p.GetTargetKw() != c.tkw || p.GetAchievedKw() != c.akw {
			t.Errorf("%s: %v", c.name, p)
		}
	}
	p := StatusProto(Status{Phase: PhaseCurtailing, Event: Event{ID: "e", Target: Full(), Source: "local:admin"},
		Curtailed: []string{"a", "b"}, Stragglers: []string{"c"}})
	if !p.GetFull() || p.GetSource() != "local:admin" || len(p.GetCurtailed()) != 2 || len(p.GetStragglers()) != 1 {
		t.Fatalf("%v", p)
	}
}
