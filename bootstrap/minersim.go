package bootstrap

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners/sim"
	"google.golang.org/protobuf/encoding/protojson"
)

// MinerSimOptions configures `hashfleet minersim`.
type MinerSimOptions struct {
	Sim sim.Config
	// DevicesOut, when set, receives the fleet's device list as JSON (what a node's --devices flag reads).
	DevicesOut string
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
