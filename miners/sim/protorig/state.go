package protorig

import (
	"crypto/ed25519"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"
)

// State is a copy of one rig's state with the values its API reports, for tests to compare against.
type State struct {
	ID       string
	Serial   string // control-board serial, cb_sn
	MAC      string
	Hostname string
	Model    string
	Firmware string
	// Status is the contract's mining status: "Mining", "Stopped", "Curtailed" or "NoPools".
	Status    string
	Stopped   bool // stopped by POST /api/v1/mining/stop
	Curtailed bool // curtailed by the rig's curtailment service (Miner.SetCurtailment)

	PowerTargetW        int
	PowerTargetMinW     int
	PowerTargetMaxW     int
	DefaultPowerTargetW int
	PerformanceMode     string

	HashrateTHs      float64 // current and average (the simulator does not jitter)
	IdealHashrateTHs float64
	PowerW           float64
	EfficiencyJTH    float64 // 0 while not hashing
	TempC            float64 // miner-level temperature, the hottest board's average

	Boards   []Board
	Fans     []Fan
	Pools    []Pool
	Errors   []RigError
	Locating bool

	Rebooting bool
	Reboots   int
	UptimeS   int64
	// AuthKey is the paired ed25519 public key, nil before pairing.
	AuthKey ed25519.PublicKey
}

// Board is one hashboard.
type Board struct {
	Index       int
	Serial      string
	Asics       int
	HashrateTHs float64
	InletC      float64
	OutletC     float64
	AvgC        float64
	PowerW      float64
}

// Fan is one fan.
type Fan struct {
	Slot    int
	RPM     int
	Percent int
}

// Pool is one configured pool. ID is its rank by priority (0 highest), as the contract numbers pools.
type Pool struct {
	ID       int
	Priority int
	Name     string
	URL      string
	User     string
	Password string
	Status   string // "Active", "Idle"
	Accepted int64
	Rejected int64
}

// RigError is one entry of GET /api/v1/errors.
type RigError struct {
	Source    string // "rig", "fan", "psu", "hashboard"
	Slot      int
	Code      string
	Timestamp int64
	Message   string
}

const (
	statusMining    = "Mining"
	statusStopped   = "Stopped"
	statusCurtailed = "Curtailed"
	statusNoPools   = "NoPools"

	numBoards     = 3
	asicsPerBoard = 192
	numFans       = 4
	idlePowerW    = 55
)

// rig is the mutable state behind one Miner, guarded by Miner.mu.
type rig struct {
	serial, mac, hostname, model, firmware string
	boardSerials                           []string
	nominalTHs                             float64 // at the default power target
	tempOffset                             float64
	fanBase                                int

	stopped, curtailed bool
	target             int
	minTarget          int
	maxTarget          int
	defTarget          int
	perfMode           string
	pools              []Pool
	errors             []RigError
	locateUntil        time.Time // zero: off; far future: on until disabled
	bootedAt           time.Time
	miningSince        time.Time
	authKey            ed25519.PublicKey
	password           string
	tokenSecret        []byte
	revoked            map[string]bool // logged-out token ids
}

var forever = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)

func newRig(r *rand.Rand, i int, password string, now time.Time) *rig {
	g := &rig{
		serial:     fmt.Sprintf("PR%02d%06d%05d", 24+r.IntN(2), r.IntN(1000000), i),
		mac:        fmt.Sprintf("02:50:52:%02x:%02x:%02x", r.IntN(256), r.IntN(256), r.IntN(256)),
		hostname:   fmt.Sprintf("proto-rig-%04d", i),
		model:      "Rig",
		firmware:   "1.8.2",
		nominalTHs: 285 + 30*r.Float64(),
		tempOffset: 4 * r.Float64(),
		fanBase:    3200 + r.IntN(400),
		minTarget:  1000,
		maxTarget:  5500,
		defTarget:  4500,
		perfMode:   "MaximumHashrate",
		bootedAt:   now,
		password:   password,
		revoked:    map[string]bool{},
	}
	g.target = g.defTarget
	g.miningSince = now
	for b := range numBoards {
		g.boardSerials = append(g.boardSerials, fmt.Sprintf("HB%s%d", g.serial[2:], b))
	}
	g.tokenSecret = make([]byte, 32)
	for k := range g.tokenSecret {
		g.tokenSecret[k] = byte(r.IntN(256))
	}
	g.pools = []Pool{
		{ID: 0, Priority: 0, Name: "Primary", URL: "stratum+tcp://pool.example.com:3333", User: fmt.Sprintf("fleet.%04d", i), Password: "x", Accepted: int64(10000 + r.IntN(5000)), Rejected: int64(r.IntN(30))},
		{ID: 1, Priority: 1, Name: "Backup", URL: "stratum+tcp://backup.example.com:3333", User: fmt.Sprintf("fleet.%04d", i), Password: "x"},
	}
	return g
}

func (g *rig) status() string {
	switch {
	case g.stopped:
		return statusStopped
	case g.curtailed:
		return statusCurtailed
	case len(g.pools) == 0:
		return statusNoPools
	}
	return statusMining
}

func (g *rig) hashing() bool { return g.status() == statusMining }

// snapshot computes what the API reports at now.
func (g *rig) snapshot(id string, now time.Time) State {
	s := State{
		ID: id, Serial: g.serial, MAC: g.mac, Hostname: g.hostname, Model: g.model, Firmware: g.firmware,
		Status: g.status(), Stopped: g.stopped, Curtailed: g.curtailed,
		PowerTargetW: g.target, PowerTargetMinW: g.minTarget, PowerTargetMaxW: g.maxTarget,
		DefaultPowerTargetW: g.defTarget, PerformanceMode: g.perfMode,
		IdealHashrateTHs: round2(g.nominalTHs * float64(g.target) / float64(g.defTarget)),
		Errors:           slices.Clone(g.errors),
		Locating:         !g.locateUntil.IsZero() && now.Before(g.locateUntil),
		UptimeS:          int64(now.Sub(g.bootedAt) / time.Second),
		AuthKey:          slices.Clone(g.authKey),
	}
	hashing := g.hashing()
	s.PowerW = idlePowerW
	if hashing {
		s.HashrateTHs = s.IdealHashrateTHs
		s.PowerW = float64(g.target)
		s.EfficiencyJTH = round2(s.PowerW / s.HashrateTHs)
	}
	for b := range numBoards {
		bd := Board{Index: b, Serial: g.boardSerials[b], Asics: asicsPerBoard, InletC: round2(28 + g.tempOffset), PowerW: 0}
		bd.OutletC = bd.InletC + 2
		if hashing {
			bd.HashrateTHs = round2(s.HashrateTHs / numBoards)
			bd.PowerW = round2((s.PowerW - idlePowerW) / numBoards)
			bd.InletC = round2(40 + g.tempOffset + float64(b))
			bd.OutletC = round2(bd.InletC + 22*float64(g.target)/float64(g.defTarget))
		}
		bd.AvgC = round2((bd.InletC + bd.OutletC) / 2)
		s.TempC = max(s.TempC, bd.AvgC)
		s.Boards = append(s.Boards, bd)
	}
	for f := range numFans {
		fan := Fan{Slot: f + 1, RPM: 1200 + 10*f, Percent: 20}
		if hashing {
			fan.RPM = g.fanBase + 40*f
			fan.Percent = 60
		}
		s.Fans = append(s.Fans, fan)
	}
	for _, p := range g.pools {
		p.Status = "Idle"
		if hashing && p.ID == 0 {
			p.Status = "Active"
		}
		s.Pools = append(s.Pools, p)
	}
	return s
}

func round2(v float64) float64 { return float64(int64(v*100+0.5)) / 100 }

// setPools replaces the pool list; pools are kept sorted by priority and numbered by rank.
func (g *rig) setPools(ps []Pool) {
	slices.SortStableFunc(ps, func(a, b Pool) int { return a.Priority - b.Priority })
	for i := range ps {
		ps[i].ID = i
	}
	g.pools = ps
}
