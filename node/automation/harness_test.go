package automation

import (
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/node/curtail"
)

// simMiner is one miner of the in-memory site the automation tests run against.
type simMiner struct {
	id          string
	state       pb.MinerState
	since       time.Time
	tempC       float64
	hashTHs     float64 // what it hashes now (when mining)
	healthyTHs  float64
	powerW      float64
	powerTarget float64
	// A reboot: the miner shows REBOOTING from downAt until upAt, then mines at its healthy hashrate.
	downAt, upAt time.Time
	// sleeping: curtailed (power ~1%).
	commands []*pb.CommandSpec
}

// site is the in-memory site: commands take effect at once, except a reboot, which takes RebootLag to show
// and RebootFor to come back.
type site struct {
	mu        sync.Mutex
	miners    map[string]*simMiner
	RebootLag time.Duration
	RebootFor time.Duration
	cmds      []curtail.Command
}

func newSite(n int, now time.Time) *site {
	s := &site{miners: map[string]*simMiner{}, RebootFor: 3 * time.Minute}
	for i := range n {
		id := fmt.Sprintf("m-%04d", i)
		s.miners[id] = &simMiner{id: id, state: pb.MinerState_MINER_STATE_MINING, since: now, tempC: 70, hashTHs: 100, healthyTHs: 100, powerW: 3000}
	}
	return s
}

func (s *site) set(id string, f func(m *simMiner)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s.miners[id])
}

func (s *site) all(f func(m *simMiner)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range s.miners {
		f(m)
	}
}

func (s *site) setState(m *simMiner, st pb.MinerState, now time.Time) {
	if m.state != st {
		m.state, m.since = st, now
	}
}

func (s *site) snapshots(now time.Time) []curtail.MinerSnapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]curtail.MinerSnapshot, 0, len(s.miners))
	for _, m := range s.miners {
		if !m.downAt.IsZero() && !now.Before(m.downAt) {
			s.setState(m, pb.MinerState_MINER_STATE_REBOOTING, m.downAt)
			m.downAt = time.Time{}
		}
		if !m.upAt.IsZero() && !now.Before(m.upAt) && m.downAt.IsZero() {
			s.setState(m, pb.MinerState_MINER_STATE_MINING, m.upAt)
			m.upAt, m.hashTHs = time.Time{}, m.healthyTHs
		}
		snap := curtail.MinerSnapshot{ID: m.id, State: m.state, StateSince: m.since, PowerW: m.powerW, PowerTargetW: m.powerTarget,
			Caps: curtail.Capabilities{CanSleep: true}}
		if m.state != pb.MinerState_MINER_STATE_UNREACHABLE && m.state != pb.MinerState_MINER_STATE_REBOOTING {
			snap.ObservedAt, snap.MaxTempC = now, m.tempC
			if m.state == pb.MinerState_MINER_STATE_MINING {
				snap.HashrateTHs = m.hashTHs
			}
		}
		out = append(out, snap)
	}
	slices.SortFunc(out, func(a, b curtail.MinerSnapshot) int { return compare(a.ID, b.ID) })
	return out
}

func compare(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (s *site) apply(now time.Time, c curtail.Command) []*pb.MinerResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cmds = append(s.cmds, c)
	var out []*pb.MinerResult
	for _, id := range c.MinerIDs {
		m := s.miners[id]
		m.commands = append(m.commands, c.Spec)
		switch c.Spec.GetAction() {
		case pb.Action_ACTION_CURTAIL:
			s.setState(m, pb.MinerState_MINER_STATE_CURTAILED, now)
			m.powerW = 30
		case pb.Action_ACTION_STOP_MINING:
			s.setState(m, pb.MinerState_MINER_STATE_STOPPED, now)
			m.powerW = 50
		case pb.Action_ACTION_UNCURTAIL, pb.Action_ACTION_START_MINING:
			s.setState(m, pb.MinerState_MINER_STATE_MINING, now)
			m.powerW = 3000
		case pb.Action_ACTION_REBOOT:
			m.downAt, m.upAt = now.Add(s.RebootLag), now.Add(s.RebootLag+s.RebootFor)
		}
		out = append(out, &pb.MinerResult{MinerId: id, Code: pb.ResultCode_RESULT_CODE_SUCCEEDED})
	}
	return out
}

// countState counts miners in st, plus those with a reboot commanded that has not shown yet.
func (s *site) rebootingOrPending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, m := range s.miners {
		if m.state == pb.MinerState_MINER_STATE_REBOOTING || !m.downAt.IsZero() {
			n++
		}
	}
	return n
}

func (s *site) commandsOf(id string, a pb.Action) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.miners[id].commands {
		if c.GetAction() == a {
			n++
		}
	}
	return n
}

// evalLoop drives Evaluate against the site, as the AutomationActor does.
type evalLoop struct {
	p       Policy
	st      State
	s       *site
	now     time.Time
	actions []Action
	at      []time.Time
}

func newEvalLoop(p Policy, s *site, now time.Time) *evalLoop {
	cfg := DefaultConfig()
	cfg.NodeID = "n1"
	return &evalLoop{p: p, st: NewState(cfg), s: s, now: now}
}

func (l *evalLoop) step() []Action {
	acts, st := Evaluate(l.p, l.st, Observations{Miners: l.s.snapshots(l.now)}, l.now)
	l.st = st
	for _, a := range acts {
		l.actions = append(l.actions, a)
		l.at = append(l.at, l.now)
		if a.Kind == ActCommand {
			l.s.apply(l.now, curtail.Command{CommandID: a.ID, MinerIDs: a.MinerIDs, Spec: a.Spec})
		}
	}
	return acts
}

func (l *evalLoop) run(d, every time.Duration, each func()) {
	end := l.now.Add(d)
	for l.now.Before(end) {
		l.now = l.now.Add(every)
		l.step()
		if each != nil {
			each()
		}
	}
}
