package cgminer

import (
	"context"
	"encoding/json"
	"net"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/hashfleet/hashfleet/messages/pb"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// rawServer is a TCP listener that answers each request with whatever its handler writes: the quirk tests
// use it to send exactly the bytes real firmware sends.
type rawServer struct {
	addr string
	mu   sync.Mutex
	cmds []string // commands received, in order
}

// handler answers one request; the connection is closed when it returns.
type handler func(cmd string, conn net.Conn)

// reply answers every request with b.
func reply(b string) handler {
	return func(_ string, c net.Conn) { c.Write([]byte(b)) }
}

// byCommand answers each command with its entry, and unknown ones with an "Invalid command" error.
func byCommand(replies map[string]string) handler {
	return func(cmd string, c net.Conn) {
		b, ok := replies[cmd]
		if !ok {
			b = `{"STATUS":[{"STATUS":"E","When":1700000000,"Code":14,"Msg":"Invalid command","Description":"cgminer 4.11.1"}],"id":1}` + "\x00"
		}
		c.Write([]byte(b))
	}
}

func serveRaw(t *testing.T, h handler) *rawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawServer{addr: ln.Addr().String()}
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				go func() { <-done; c.Close() }()
				var req struct{ Command string }
				if err := json.NewDecoder(c).Decode(&req); err != nil {
					return
				}
				s.mu.Lock()
				s.cmds = append(s.cmds, req.Command)
				s.mu.Unlock()
				h(req.Command, c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		close(done)
		wg.Wait()
	})
	return s
}

func (s *rawServer) commands() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.cmds...)
}

func (s *rawServer) driver(cfg Config) *Driver {
	return New(&pb.Device{MinerId: "m1", Address: s.addr}, cfg)
}

func poll(t *testing.T, d *Driver) (*pb.Telemetry, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return d.Poll(ctx)
}

func mustPoll(t *testing.T, d *Driver) *pb.Telemetry {
	t.Helper()
	tel, err := poll(t, d)
	if err != nil {
		t.Fatalf("Poll: %v", err)
	}
	return tel
}

// joined builds a "summary+stats+pools" reply from three reply objects, with bmminer's trailing NUL.
func joined(summary, stats, pools string) string {
	return `{"summary":[` + summary + `],"stats":[` + stats + `],"pools":[` + pools + `],"id":1}` + "\x00"
}

const okStatus = `"STATUS":[{"STATUS":"S","When":1700000000,"Code":11,"Msg":"Summary","Description":"cgminer 4.11.1"}]`

func summaryReply(fields string) string {
	return `{` + okStatus + `,"SUMMARY":[{` + fields + `}],"id":1}`
}
func statsReply(objs string) string { return `{` + okStatus + `,"STATS":[` + objs + `],"id":1}` }
func poolsReply(objs string) string { return `{` + okStatus + `,"POOLS":[` + objs + `],"id":1}` }

const onePool = `{"POOL":0,"URL":"stratum+tcp://a.example:3333","Status":"Alive","Priority":0,"Accepted":10,"Rejected":1,"User":"w1","Stratum Active":true}`

// s19Joined is a trimmed bmminer S19j Pro reply to summary+stats+pools.
var s19Joined = joined(
	summaryReply(`"Elapsed":3600,"GHS 5s":"104212.36","GHS av":104072.81,"Accepted":5000,"Rejected":3,"Device Hardware%":0.0001`),
	statsReply(`{"BMMiner":"1.0.0","Miner":"uart_trans.1.3","CompileTime":"Mon Nov 29 15:11:22 CST 2021","Type":"Antminer S19j Pro"},`+
		`{"STATS":0,"ID":"BC50","Elapsed":3600,"GHS 5s":"104212.36","GHS av":104072.81,"Mode":0,"fan_num":4,"fan1":5520,"fan2":5400,"fan3":5520,"fan4":5400,`+
		`"temp_num":3,"temp1":44,"temp2":45,"temp3":46,"temp2_1":59,"temp2_2":60,"temp2_3":61,"temp_pcb1":"42-42-44-44","temp_chip1":"57-57-59-59",`+
		`"rate_unit":"GH/s","chain_acn1":126,"chain_acn2":126,"chain_acn3":126,"chain_rate1":"34750.12","chain_rate2":"34700.00","chain_rate3":"34762.24"}`),
	poolsReply(onePool+`,{"POOL":1,"URL":"stratum+tcp://b.example:3333","Status":"Alive","Priority":1,"Accepted":0,"Rejected":0,"User":"w1","Stratum Active":false}`),
)

// near reports whether a and b agree to 1e-9 relative.
func near(a, b float64) bool {
	d := a - b
	if d < 0 {
		d = -d
	}
	return d <= 1e-9*max(1, a, -a, b, -b)
}
