package miner

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
)

const (
	unspecified = pb.MinerState_MINER_STATE_UNSPECIFIED
	online      = pb.MinerState_MINER_STATE_ONLINE
	unreachable = pb.MinerState_MINER_STATE_UNREACHABLE
	rebooting   = pb.MinerState_MINER_STATE_REBOOTING
	mining      = pb.MinerState_MINER_STATE_MINING
	stopped     = pb.MinerState_MINER_STATE_STOPPED
	curtailed   = pb.MinerState_MINER_STATE_CURTAILED
)

func TestNext(t *testing.T) {
	r := DefaultConfig().Rules() // threshold 2, reboot timeout 5m, min reboot time 30s
	t0 := time.Unix(10_000, 0)
	ok := func(s pb.MinerState, uptime int64) Observation {
		return Observation{Kind: PollSucceeded, Reported: s, UptimeS: uptime}
	}
	fail := Observation{Kind: PollFailed, Err: errors.New("connection refused")}
	cmd := func(a pb.Action) Observation { return Observation{Kind: CommandSucceeded, Action: a} }
	rebootingAt := func(at time.Time, uptime int64) Machine {
		return Machine{State: rebooting, Since: at, RebootAt: at, UptimeAtReboot: uptime}
	}

	tests := []struct {
		name     string
		m        Machine
		obs      Observation
		now      time.Time
		want     pb.MinerState
		failures int
		changed  bool
	}{
		{"first poll mining", Machine{}, ok(mining, 100), t0, mining, 0, true},
		{"first poll, driver cannot tell", Machine{}, ok(unspecified, 100), t0, online, 0, true},
		{"driver reporting unreachable is read as online", Machine{State: mining}, ok(unreachable, 100), t0, online, 0, true},
		{"mining stays mining", Machine{State: mining}, ok(mining, 105), t0, mining, 0, false},
		{"stopped reported", Machine{State: mining}, ok(stopped, 105), t0, stopped, 0, true},
		{"curtailed reported", Machine{State: mining}, ok(curtailed, 105), t0, curtailed, 0, true},
		{"one failure is tolerated", Machine{State: mining}, fail, t0, mining, 1, false},
		{"second failure: unreachable", Machine{State: mining, Failures: 1}, fail, t0, unreachable, 2, true},
		{"third failure stays unreachable", Machine{State: unreachable, Failures: 2}, fail, t0, unreachable, 3, false},
		{"unknown miner failing twice", Machine{Failures: 1}, fail, t0, unreachable, 2, true},
		{"back from unreachable", Machine{State: unreachable, Failures: 5}, ok(mining, 10), t0, mining, 0, true},
		{"success resets the failure count", Machine{State: mining, Failures: 1}, ok(mining, 10), t0, mining, 0, false},

		{"reboot command", Machine{State: mining, LastUptime: 5000}, cmd(pb.Action_ACTION_REBOOT), t0, rebooting, 0, true},
		{"rebooting: failure before timeout stays rebooting", rebootingAt(t0, 5000), fail, t0.Add(4 * time.Minute), rebooting, 1, false},
		{"rebooting: many failures before timeout stay rebooting", Machine{State: rebooting, RebootAt: t0, Failures: 9}, fail, t0.Add(299 * time.Second), rebooting, 10, false},
		{"rebooting: failure at timeout is unreachable", rebootingAt(t0, 5000), fail, t0.Add(5 * time.Minute), unreachable, 1, true},
		{"rebooting: answers with uptime reset", rebootingAt(t0, 5000), ok(mining, 40), t0.Add(10 * time.Second), mining, 0, true},
		{"rebooting: answers early, uptime not reset", rebootingAt(t0, 5000), ok(mining, 5010), t0.Add(10 * time.Second), rebooting, 0, false},
		{"rebooting: briefly-up miner back with uptime past its old uptime", rebootingAt(t0, 2), ok(mining, 5), t0.Add(10 * time.Second), mining, 0, true},
		{"rebooting: briefly-up miner that never went down", rebootingAt(t0, 2), ok(mining, 12), t0.Add(10 * time.Second), rebooting, 0, false},
		{"rebooting: answers after min reboot time without uptime", rebootingAt(t0, 0), ok(mining, 0), t0.Add(30 * time.Second), mining, 0, true},
		{"rebooting: answers before min reboot time without uptime", rebootingAt(t0, 0), ok(mining, 0), t0.Add(29 * time.Second), rebooting, 0, false},
		{"rebooting: answers after it went down, uptime unknown", Machine{State: rebooting, RebootAt: t0, WentDown: true}, ok(mining, 0), t0.Add(5 * time.Second), mining, 0, true},
		{"rebooting: back but not hashing yet", rebootingAt(t0, 5000), ok(online, 20), t0.Add(time.Minute), online, 0, true},
		{"reboot while rebooting restarts the clock", rebootingAt(t0, 5000), cmd(pb.Action_ACTION_REBOOT), t0.Add(time.Minute), rebooting, 0, false},

		{"stop command", Machine{State: mining}, cmd(pb.Action_ACTION_STOP_MINING), t0, stopped, 0, true},
		{"curtail command", Machine{State: mining}, cmd(pb.Action_ACTION_CURTAIL), t0, curtailed, 0, true},
		{"start command: online until a poll shows hashing", Machine{State: stopped}, cmd(pb.Action_ACTION_START_MINING), t0, online, 0, true},
		{"uncurtail command", Machine{State: curtailed}, cmd(pb.Action_ACTION_UNCURTAIL), t0, online, 0, true},
		{"blink changes nothing", Machine{State: mining}, cmd(pb.Action_ACTION_BLINK), t0, mining, 0, false},
		{"pools change nothing", Machine{State: unreachable}, cmd(pb.Action_ACTION_UPDATE_POOLS), t0, unreachable, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, tr := r.Next(tc.m, tc.obs, tc.now)
			if got.State != tc.want {
				t.Fatalf("state %s, want %s", got.State, tc.want)
			}
			if got.Failures != tc.failures {
				t.Fatalf("failures %d, want %d", got.Failures, tc.failures)
			}
			if tr.Changed() != tc.changed || tr.From != tc.m.State || tr.To != got.State {
				t.Fatalf("transition %+v, changed want %v", tr, tc.changed)
			}
			if tr.Changed() {
				if tr.Reason == "" {
					t.Fatal("a transition without a reason")
				}
				if !got.Since.Equal(tc.now) {
					t.Fatalf("since %v, want %v", got.Since, tc.now)
				}
			}
		})
	}
}

func TestNextRebootRecordsUptimeAndClearsOnReturn(t *testing.T) {
	r := DefaultConfig().Rules()
	t0 := time.Unix(0, 0)
	m, _ := r.Next(Machine{}, Observation{Kind: PollSucceeded, Reported: mining, UptimeS: 7200}, t0)
	m, _ = r.Next(m, Observation{Kind: CommandSucceeded, Action: pb.Action_ACTION_REBOOT}, t0.Add(time.Second))
	if m.UptimeAtReboot != 7200 || !m.RebootAt.Equal(t0.Add(time.Second)) {
		t.Fatalf("reboot recorded %+v", m)
	}
	m, _ = r.Next(m, Observation{Kind: PollSucceeded, Reported: mining, UptimeS: 15}, t0.Add(time.Minute))
	if m.State != mining || !m.RebootAt.IsZero() || m.UptimeAtReboot != 0 {
		t.Fatalf("after return %+v", m)
	}
}

func TestPollDelay(t *testing.T) {
	const interval, jitter = 5 * time.Second, 500 * time.Millisecond
	for _, r := range []float64{0, 0.25, 0.5, 0.999} {
		d := nextPollDelay(interval, jitter, 0, r)
		if d < interval-jitter || d > interval+jitter {
			t.Fatalf("r=%v: delay %s outside %s±%s", r, d, interval, jitter)
		}
		if f := firstPollDelay(interval, r); f < 0 || f >= interval {
			t.Fatalf("r=%v: first delay %s outside [0,%s)", r, f, interval)
		}
	}
	if d := nextPollDelay(interval, jitter, time.Second, 0.5); d != 4*time.Second {
		t.Fatalf("a 1s poll must shorten the wait to 4s, got %s", d)
	}
	if d := nextPollDelay(interval, jitter, time.Minute, 0.5); d != 0 {
		t.Fatalf("a poll longer than the interval: next at once, got %s", d)
	}
	if d := nextPollDelay(0, 0, 0, 0.7); d != 0 {
		t.Fatalf("interval 0 polls back to back, got %s", d)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	c := DefaultConfig()
	c.PollJitter = c.PollInterval
	c.FailureThreshold = 0
	c.RebootTimeout = time.Second
	err := c.Validate()
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, want := range []string{"jitter", "failure threshold", "reboot timeout"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q does not mention %q", err, want)
		}
	}
}
