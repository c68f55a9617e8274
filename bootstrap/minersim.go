package bootstrap

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners/sim"
	"google.golang.org/protobuf/encoding/protojson"
)

// MinerSimOptions configures `hashfleet minersim`.
type MinerSimOptions struct {
	Sim sim.Config
	// DevicesOut, when set, receives the fleet's device list as JSON (what a node's --devices flag reads).
	DevicesOut string
	// AdminListen, when set, serves a read-only view of the simulated miners on that loopback address:
	// GET /writes (every write command each miner received: what executed on the "hardware") and
	// GET /miners (each miner's state).
	AdminListen string
}

// RunMinerSim serves a simulated fleet until ctx is done.
func RunMinerSim(ctx context.Context, opts MinerSimOptions, out io.Writer) error {
	if err := opts.Sim.Validate(); err != nil {
		return err
	}
	fleet, err := sim.Start(opts.Sim)
	if err != nil {
		return fmt.Errorf("start simulator: %w", err)
	}
	defer fleet.Close()
	devs := fleet.Devices()
	if opts.DevicesOut != "" {
		if err := WriteDevices(opts.DevicesOut, devs); err != nil {
			return err
		}
	}
	first, last := devs[0].GetAddress(), devs[len(devs)-1].GetAddress()
	fmt.Fprintf(out, "minersim: %d CGMiner-API miners serving, %s … %s\n", len(devs), first, last)
	if opts.AdminListen != "" {
		addr, stop, err := serveSimAdmin(opts.AdminListen, fleet)
		if err != nil {
			return err
		}
		defer stop()
		fmt.Fprintf(out, "minersim: admin view http://%s/writes\n", addr)
	}
	if opts.DevicesOut != "" {
		fmt.Fprintf(out, "minersim: device list written to %s\n", opts.DevicesOut)
	}
	<-ctx.Done()
	fmt.Fprintln(out, "minersim: stopping")
	return nil
}

// devicesFile is the on-disk shape of a device list.
type devicesFile struct {
	Devices []json.RawMessage `json:"devices"`
}

// WriteDevices writes devices as JSON (protojson per device) atomically.
func WriteDevices(path string, devs []*pb.Device) error {
	f := devicesFile{Devices: make([]json.RawMessage, 0, len(devs))}
	for _, d := range devs {
		b, err := protojson.Marshal(d)
		if err != nil {
			return fmt.Errorf("encode device %s: %w", d.GetMinerId(), err)
		}
		f.Devices = append(f.Devices, b)
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("encode device list: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("write device list: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write device list: %w", err)
	}
	return nil
}

// ReadDevices reads a device list written by WriteDevices (or by hand), validating every entry.
func ReadDevices(path string) ([]*pb.Device, error) {
	b, err := os.ReadFile(filepath.Clean(path))
	if err != nil {
		return nil, fmt.Errorf("read device list: %w", err)
	}
	var f devicesFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("device list %s is not valid JSON: %w", path, err)
	}
	seen := map[string]bool{}
	devs := make([]*pb.Device, 0, len(f.Devices))
	for i, raw := range f.Devices {
		d := &pb.Device{}
		if err := protojson.Unmarshal(raw, d); err != nil {
			return nil, fmt.Errorf("device list %s: entry %d: %w", path, i, err)
		}
		if d.GetMinerId() == "" || d.GetAddress() == "" {
			return nil, fmt.Errorf("device list %s: entry %d: minerId and address are required", path, i)
		}
		if seen[d.GetMinerId()] {
			return nil, fmt.Errorf("device list %s: entry %d: duplicate minerId %q", path, i, d.GetMinerId())
		}
		seen[d.GetMinerId()] = true
		devs = append(devs, d)
	}
	return devs, nil
}

// simWrite is one write a simulated miner received, as GET /writes shows it.
type simWrite struct {
	Miner     string    `json:"miner"`
	At        time.Time `json:"at"`
	Command   string    `json:"command"`
	Parameter string    `json:"parameter,omitempty"`
	Accepted  bool      `json:"accepted"`
}

// serveSimAdmin serves the read-only admin view on a loopback address.
func serveSimAdmin(listen string, fleet *sim.Fleet) (addr string, stop func(), err error) {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return "", nil, fmt.Errorf("--admin-listen %q: %w", listen, err)
	}
	if !isLoopbackHost(host) {
		return "", nil, fmt.Errorf("--admin-listen %q: the simulator's admin view serves on loopback only", listen)
	}
	lis, err := net.Listen("tcp", listen)
	if err != nil {
		return "", nil, fmt.Errorf("--admin-listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /writes", func(w http.ResponseWriter, r *http.Request) {
		out := []simWrite{}
		for _, m := range fleet.Miners() {
			if id := r.URL.Query().Get("miner"); id != "" && id != m.ID() {
				continue
			}
			for _, wr := range m.WriteLog() {
				out = append(out, simWrite{Miner: m.ID(), At: wr.At.UTC(), Command: wr.Command, Parameter: wr.Parameter, Accepted: wr.Accepted})
			}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"writes": out})
	})
	mux.HandleFunc("GET /miners", func(w http.ResponseWriter, _ *http.Request) {
		out := map[string]any{}
		for _, m := range fleet.Miners() {
			out[m.ID()] = m.Snapshot()
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"miners": out})
	})
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = hs.Serve(lis)
	}()
	return lis.Addr().String(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(ctx)
		<-done
	}, nil
}
