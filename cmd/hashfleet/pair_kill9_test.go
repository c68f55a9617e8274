package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/node/writelog"
)

// A warm-standby pair as real processes of the built binary (minersim, server, two `node run` with
// --gossip-listen on loopback): the active node is killed with SIGKILL while the API streams commands; the
// standby takes control (its first successful miner write, read from its write log) within the 10 s target,
// every command the API accepted ends in a final state, and the two nodes' write logs (the killed one's read
// back from disk, a torn last line skipped) never overlap on a miner.
func TestKill9ActivePairMember(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs five processes")
	}
	bin := crashBinary(t)
	dir := t.TempDir()
	devices := filepath.Join(dir, "devices.json")
	sim := start(t, bin, "minersim", "minersim", "--miners", "3", "--devices-out", devices)
	sim.await(`device list written to`, 10*time.Second)
	waitFor(t, 10*time.Second, "the device file", func() bool { _, err := os.Stat(devices); return err == nil })
	srv := start(t, bin, "server", "server", "--data-dir", filepath.Join(dir, "server"), "--listen", "127.0.0.1:0",
		"--gateway-listen", "127.0.0.1:0", "--admin-token", token, "--log-level", "warn")
	httpURL := srv.await(`API and UI (http://[0-9.:]+)/`, 15*time.Second)
	gw := srv.await(`gateway\s+([0-9.:]+) \(TLS`, 5*time.Second)
	caFP := srv.await(`CA fingerprint (SHA256:[0-9a-f]+)`, 5*time.Second)
	a := api{t: t, base: httpURL}

	type member struct {
		id, dir string
		proc    *proc
	}
	members := map[string]*member{}
	for _, name := range []string{"a", "b"} {
		m := &member{dir: filepath.Join(dir, name)}
		var code struct {
			Code string `json:"code"`
		}
		if st := a.do("POST", "/api/v1/enrollment-codes", map[string]any{"site": "pair"}, &code); st != 201 {
			t.Fatalf("mint code: %d", st)
		}
		enroll := start(t, bin, "enroll "+name, "node", "enroll", "--server", gw, "--code", code.Code, "--data-dir", m.dir,
			"--ca-fingerprint", caFP, "--poll", "100ms")
		fp := enroll.await(`node identity fingerprint: (SHA256:[0-9a-f-]+)`, 10*time.Second)
		m.id = enroll.await(`enrolled as node (n[0-9a-f]+)`, 10*time.Second)
		if st := a.do("POST", "/api/v1/nodes/"+m.id+"/confirm", map[string]string{"fingerprint": fp}, nil); st != 200 {
			t.Fatalf("confirm: %d", st)
		}
		enroll.wait(10 * time.Second)
		args := []string{"node", "run", "--data-dir", m.dir, "--gossip-listen", freeLoopbackPort(t), "--poll-interval", "500ms",
			"--status-interval", "100ms", "--backoff-max", "500ms", "--local-ui", "off", "--admin-listen", "off",
			"--metrics-listen", "off", "--log-level", "info"}
		if name == "a" {
			args = append(args, "--devices", devices)
		}
		m.proc = start(t, bin, "node "+name, args...)
		waitFor(t, 15*time.Second, name+" connected", func() bool { return a.nodeConnected(m.id) })
		members[name] = m
	}
	var pend struct {
		Devices []struct {
			MinerID string `json:"miner_id"`
		} `json:"devices"`
	}
	waitFor(t, 10*time.Second, "devices pending", func() bool {
		return a.do("GET", "/api/v1/devices/pending", nil, &pend) == 200 && len(pend.Devices) == 3
	})
	var ids []string
	for _, d := range pend.Devices {
		ids = append(ids, d.MinerID)
	}
	sort.Strings(ids)
	if st := a.do("POST", "/api/v1/nodes/"+members["a"].id+"/devices", map[string]any{"miner_ids": ids}, nil); st != 200 {
		t.Fatalf("pair devices: %d", st)
	}
	var pair struct {
		ID     string `json:"id"`
		Holder string `json:"holder"`
		Epoch  uint64 `json:"epoch"`
	}
	if st := a.do("POST", "/api/v1/pairs", map[string]any{"site": "pair", "members": []string{members["a"].id, members["b"].id},
		"standby": members["b"].id, "devices": ids}, &pair); st != 201 {
		t.Fatalf("declare pair: %d", st)
	}
	getPair := func() {
		a.do("GET", "/api/v1/pairs/"+pair.ID, nil, &pair)
	}
	waitFor(t, 30*time.Second, "a holds the lease", func() bool { getPair(); return pair.Holder == members["a"].id })

	// A command stream through the API, the active killed in the middle of it.
	stop, accepted := make(chan struct{}), make(chan []string, 1)
	go func() {
		var cmds []string
		defer func() { accepted <- cmds }()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(300 * time.Millisecond):
			}
			var res struct {
				CommandID string `json:"command_id"`
			}
			if a.do("POST", "/api/v1/commands", map[string]any{"miner_ids": []string{ids[i%len(ids)]}, "action": "start"}, &res) == 202 {
				cmds = append(cmds, res.CommandID)
			}
		}
	}()
	time.Sleep(3 * time.Second) // the standby's gossip sees the active, the stream runs
	epoch := pair.Epoch
	killed := kill9(t, members["a"].proc)
	bLog := filepath.Join(members["b"].dir, "store", writelog.FileName)
	var first time.Time
	waitFor(t, 30*time.Second, "b's first write", func() bool {
		es, err := writelog.ReadFile(bLog)
		if err != nil {
			return false
		}
		for _, e := range es {
			if e.Wrote() && e.Code == "succeeded" && e.Start.After(killed) {
				first = e.Start
				return true
			}
		}
		return false
	})
	time.Sleep(time.Second)
	close(stop)
	cmds := <-accepted
	getPair()
	if pair.Holder != members["b"].id || pair.Epoch <= epoch {
		t.Fatalf("after the kill: holder %s epoch %d (before %d)", pair.Holder, pair.Epoch, epoch)
	}
	waitFor(t, 90*time.Second, fmt.Sprintf("%d commands final", len(cmds)), func() bool {
		for _, id := range cmds {
			var v struct {
				Status string `json:"status"`
			}
			if a.do("GET", "/api/v1/commands/"+id, nil, &v) != 200 || v.Status == "pending" || v.Status == "running" {
				return false
			}
		}
		return true
	})
	var all []writelog.Entry
	for _, m := range members {
		es, err := writelog.ReadFile(filepath.Join(m.dir, "store", writelog.FileName))
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, es...)
	}
	if ov := writelog.Overlaps(all); len(ov) > 0 {
		t.Fatalf("overlapping writes: %v", ov)
	}
	took := first.Sub(killed)
	t.Logf("kill -9 of the active: the standby's first write %s later (%d commands accepted, all final)", took, len(cmds))
	if took > 10*time.Second {
		t.Fatalf("failover after kill -9 took %s, target 10s", took)
	}
}

func freeLoopbackPort(t *testing.T) string {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
		_ = l.Close()
		u, err := net.ListenPacket("udp", "127.0.0.1:"+port)
		if err != nil {
			continue
		}
		_ = u.Close()
		return "127.0.0.1:" + port
	}
	t.Fatal("no free port")
	return ""
}
