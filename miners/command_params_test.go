package miners

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"mime"
	"mime/multipart"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashfleet/hashfleet/messages/pb"
)

func TestLocateEnable(t *testing.T) {
	for params, want := range map[string]bool{"": true, "true": true, "false": false, "0": false} {
		p := map[string]string{}
		if params != "" {
			p["enable"] = params
		}
		got, err := LocateEnable(p)
		if err != nil || got != want {
			t.Fatalf("enable=%q: %v, %v", params, got, err)
		}
	}
	if _, err := LocateEnable(map[string]string{"enable": "maybe"}); !errors.Is(err, ErrRefused) {
		t.Fatalf("non-boolean: %v", err)
	}
}

func TestPowerTargetWatts(t *testing.T) {
	if w, err := PowerTargetWatts(3249.6); err != nil || w != 3250 {
		t.Fatalf("3249.6: %d, %v", w, err)
	}
	for _, bad := range []float64{0, -1, math.NaN(), math.Inf(1), 1e6 + 1} {
		if _, err := PowerTargetWatts(bad); !errors.Is(err, ErrRefused) {
			t.Fatalf("%v: %v", bad, err)
		}
	}
}

func TestExecuteNamesActionAndMiner(t *testing.T) {
	spec := &pb.CommandSpec{Action: pb.Action_ACTION_SET_POWER_TARGET}
	_, err := Execute(t.Context(), "m1", spec, func(_ context.Context, _ *pb.CommandSpec) (string, error) { return "", ErrRefused })
	if !errors.Is(err, ErrRefused) || !strings.HasPrefix(err.Error(), "set_power_target m1: ") {
		t.Fatalf("error %v", err)
	}
	msg, err := Execute(t.Context(), "m1", spec, func(context.Context, *pb.CommandSpec) (string, error) { return "ok", nil })
	if msg != "ok" || err != nil {
		t.Fatalf("%q, %v", msg, err)
	}
}

func TestDescribePools(t *testing.T) {
	if got := DescribePools(nil); got != "no pools configured" {
		t.Fatal(got)
	}
	got := DescribePools([]*pb.Pool{{Priority: 0, Url: "stratum+tcp://a:3333", User: "w.1", Status: "Alive"}, {Priority: 1, Url: "stratum+tcp://b:3333", User: "w.2", Status: "Dead"}})
	if got != "2 pools: #0 stratum+tcp://a:3333 user w.1 (Alive); #1 stratum+tcp://b:3333 user w.2 (Dead)" {
		t.Fatal(got)
	}
}

// TestFirmwareForm: the image goes in the named file field (the default name when the artifact has none),
// the plain fields follow; an odd field list and a spec without an image are refused.
func TestFirmwareForm(t *testing.T) {
	path := filepath.Join(t.TempDir(), "img")
	if err := os.WriteFile(path, []byte("IMAGE"), 0o600); err != nil {
		t.Fatal(err)
	}
	spec := &pb.CommandSpec{Action: pb.Action_ACTION_FIRMWARE_UPDATE, Params: map[string]string{ParamFirmwarePath: path}}
	body, ct, err := FirmwareForm(spec, "firmware", "firmware.bin", "keep_settings", "1")
	if err != nil {
		t.Fatal(err)
	}
	_, mp, err := mime.ParseMediaType(ct)
	if err != nil {
		t.Fatal(err)
	}
	r := multipart.NewReader(bytes.NewReader(body), mp["boundary"])
	part, err := r.NextPart()
	if err != nil {
		t.Fatal(err)
	}
	img, _ := io.ReadAll(part)
	if part.FormName() != "firmware" || part.FileName() != "firmware.bin" || string(img) != "IMAGE" {
		t.Fatalf("file part %q %q %q", part.FormName(), part.FileName(), img)
	}
	part, err = r.NextPart()
	if err != nil {
		t.Fatal(err)
	}
	v, _ := io.ReadAll(part)
	if part.FormName() != "keep_settings" || string(v) != "1" {
		t.Fatalf("field %q=%q", part.FormName(), v)
	}
	if _, err := r.NextPart(); err != io.EOF {
		t.Fatalf("extra part: %v", err)
	}
	spec.Firmware = &pb.ArtifactRef{Name: "fw.swu"}
	body, ct, err = FirmwareForm(spec, "file", "firmware.swu")
	if err != nil {
		t.Fatal(err)
	}
	_, mp, _ = mime.ParseMediaType(ct)
	if part, err = multipart.NewReader(bytes.NewReader(body), mp["boundary"]).NextPart(); err != nil || part.FileName() != "fw.swu" || part.FormName() != "file" {
		t.Fatalf("named artifact: %v", err)
	}
	if _, _, err := FirmwareForm(spec, "file", "x", "lonely"); err == nil {
		t.Fatal("odd field list accepted")
	}
	if _, _, err := FirmwareForm(&pb.CommandSpec{}, "file", "x"); err == nil || !strings.Contains(err.Error(), "no image fetched") {
		t.Fatalf("no image: %v", err)
	}
}
