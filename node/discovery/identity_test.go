package discovery

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/hashfleet/hashfleet/messages/pb"
)

func TestMinerID(t *testing.T) {
	for _, tc := range []struct {
		dev  *pb.Device
		want string
	}{
		{&pb.Device{Mac: "02:50:52:0A:0B:0C", Serial: "X1", Address: "10.0.0.5:80"}, "m-0250520a0b0c"},
		{&pb.Device{Mac: "02-50-52-0a-0b-0c"}, "m-0250520a0b0c"},
		{&pb.Device{Mac: "0250.520a.0b0c"}, "m-0250520a0b0c"},
		{&pb.Device{Mac: "00:00:00:00:00:00", Serial: "HF12AB"}, "s-hf12ab"},
		{&pb.Device{Mac: "ff:ff:ff:ff:ff:ff", Serial: "HF12AB"}, "s-hf12ab"},
		{&pb.Device{Mac: "garbage", Serial: "HF 12/ab"}, "s-hf_12_ab"},
		{&pb.Device{Serial: "  \x00\x01 "}, "a-"},
		{&pb.Device{Address: "10.0.0.5:4028"}, "a-10.0.0.5-4028"},
		{&pb.Device{Mac: "02:00:00:00:00:01:02:03"}, "a-"}, // EUI-64 is not a MAC here
	} {
		if got := MinerID(tc.dev); got != tc.want {
			t.Errorf("MinerID(%v) = %q, want %q", tc.dev, got, tc.want)
		}
	}
}

func TestCleanText(t *testing.T) {
	if got := cleanText("  Antminer\x00 S19\x1b[31m\n "); got != "Antminer S19[31m" {
		t.Errorf("cleanText = %q", got)
	}
	long := strings.Repeat("é", 200)
	if got := cleanText(long); len(got) > maxFieldLen || !strings.HasPrefix(long, got) || strings.ContainsRune(got, '\uFFFD') {
		t.Errorf("cleanText cut %d bytes badly: %q", len(got), got)
	}
	if got := cleanText(strings.Repeat("a", 1<<20)); len(got) != maxFieldLen {
		t.Errorf("cleanText of 1 MiB = %d bytes", len(got))
	}
}

func TestParseCGReply(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		err  error
	}{
		{"trailing NUL", `{"STATUS":[{"STATUS":"S"}],"id":1}` + "\x00", nil},
		{"missing comma between STATS", `{"STATS":[{"Type":"Antminer S9"}{"ID":"BC50"}],"STATUS":[]}`, nil},
		{"truncated", `{"STATUS":[{"STATUS":"S","When":`, ErrHostile},
		{"HTTP on the API port", "HTTP/1.1 400 Bad Request\r\n\r\n", ErrNotMiner},
		{"empty", "", ErrNotMiner},
		{"two objects", `{"a":1} {"b":2}`, ErrHostile},
	} {
		_, err := parseCGReply([]byte(tc.in))
		if (tc.err == nil) != (err == nil) || (tc.err != nil && !errors.Is(err, tc.err)) {
			t.Errorf("%s: parseCGReply = %v, want %v", tc.name, err, tc.err)
		}
	}
}

func TestCGIdentity(t *testing.T) {
	doc, err := parseCGReply([]byte(`{"version":[{"STATUS":[{"STATUS":"S"}],"VERSION":[{"BMMiner":"4.11.1","type":"Antminer S19j Pro"}]}],` +
		`"stats":[{"STATUS":[{"STATUS":"S"}],"STATS":[{"BMMiner":"4.11.1"},{"ID":"BC50","MINER_ID":"HFABC","Elapsed":12}]}],"id":1}`))
	if err != nil {
		t.Fatal(err)
	}
	model, fw, serial := cgIdentity(section(doc, "version"), section(doc, "stats"))
	if model != "Antminer S19j Pro" || fw != "BMMiner 4.11.1" || serial != "HFABC" {
		t.Errorf("cgIdentity = %q %q %q", model, fw, serial)
	}
}

func TestAntminerRealm(t *testing.T) {
	h := http.Header{}
	h.Add("WWW-Authenticate", `Basic realm="router"`)
	h.Add("WWW-Authenticate", `Digest realm="antMiner Configuration", nonce="abc", qop="auth"`)
	if got := antminerRealm(h); got != "antMiner Configuration" {
		t.Errorf("antminerRealm = %q", got)
	}
	h = http.Header{"Www-Authenticate": {`Digest qop="auth", realm="NETGEAR"`}}
	if got := antminerRealm(h); got != "" {
		t.Errorf("antminerRealm(NETGEAR) = %q", got)
	}
}

func TestDecide(t *testing.T) {
	addr := netip.MustParseAddr("10.0.0.7")
	ports := DefaultPorts()
	all := &Request{}
	only := func(p ...pb.Protocol) *Request { return &Request{Protocols: p} }
	silent := fmt.Errorf("connect: %w", errSilent)
	api := cgEvidence{port: 4028, ok: true, model: "Antminer S19", firmware: "Thu Apr 22", serial: "HFSER"}
	antWeb := webEvidence{port: 80, ant: &webInfo{model: "Antminer S19 (web)", serial: "WEBSER", mac: "02:AA:BB:CC:DD:EE", firmware: "fs-1"}}
	antNoCreds := webEvidence{port: 80, ant: &webInfo{notes: []string{"no MAC"}}}
	protoWeb := webEvidence{port: 80, proto: &webInfo{model: "Rig", serial: "PR1", mac: "02:50:52:00:00:01"}}
	hostile := webEvidence{port: 443, err: fmt.Errorf("GET x: reply exceeds: %w", ErrHostile)}
	notMiner := webEvidence{port: 80, err: fmt.Errorf("an HTTP server: %w", ErrNotMiner)}

	for _, tc := range []struct {
		name     string
		req      *Request
		cgs      []cgEvidence
		webs     []webEvidence
		want     *pb.Device // nil: no device
		notes    int
		errKinds []error
	}{
		{"nothing answers", all, []cgEvidence{{port: 4028, err: silent}}, []webEvidence{{port: 80, err: silent}}, nil, 0, nil},
		{"bare CGMiner", all, []cgEvidence{api}, []webEvidence{{port: 80, err: silent}},
			&pb.Device{MinerId: "s-hfser", Protocol: pb.Protocol_PROTOCOL_CGMINER, Address: "10.0.0.7:4028", Model: "Antminer S19", Serial: "HFSER"}, 0, nil},
		{"Antminer with credentials", all, []cgEvidence{api}, []webEvidence{antWeb},
			&pb.Device{MinerId: "m-02aabbccddee", Protocol: pb.Protocol_PROTOCOL_ANTMINER, Address: "10.0.0.7:4028", WebAddress: "10.0.0.7:80",
				Model: "Antminer S19 (web)", Serial: "WEBSER", Mac: "02:aa:bb:cc:dd:ee"}, 0, nil},
		{"Antminer without credentials takes the API identity", all, []cgEvidence{api}, []webEvidence{antNoCreds},
			&pb.Device{MinerId: "s-hfser", Protocol: pb.Protocol_PROTOCOL_ANTMINER, Address: "10.0.0.7:4028", WebAddress: "10.0.0.7:80",
				Model: "Antminer S19", Serial: "HFSER"}, 1, nil},
		{"Antminer web without its API", all, []cgEvidence{{port: 4028, err: silent}}, []webEvidence{antWeb},
			&pb.Device{MinerId: "m-02aabbccddee", Protocol: pb.Protocol_PROTOCOL_ANTMINER, Address: "10.0.0.7:4028", WebAddress: "10.0.0.7:80",
				Model: "Antminer S19 (web)", Serial: "WEBSER", Mac: "02:aa:bb:cc:dd:ee"}, 1, nil},
		{"Antminer not asked for: CGMiner", only(pb.Protocol_PROTOCOL_CGMINER), []cgEvidence{api}, []webEvidence{antWeb},
			&pb.Device{MinerId: "s-hfser", Protocol: pb.Protocol_PROTOCOL_CGMINER, Address: "10.0.0.7:4028", Model: "Antminer S19", Serial: "HFSER"}, 0, nil},
		{"Proto rig first", all, []cgEvidence{{port: 4028, err: silent}}, []webEvidence{protoWeb, hostile},
			&pb.Device{MinerId: "m-025052000001", Protocol: pb.Protocol_PROTOCOL_PROTO, Address: "10.0.0.7:80", WebAddress: "10.0.0.7:80",
				Model: "Rig", Serial: "PR1", Mac: "02:50:52:00:00:01"}, 1, nil}, // the hostile 443 is a note
		{"Proto not asked for", only(pb.Protocol_PROTOCOL_CGMINER), nil, []webEvidence{protoWeb}, nil, 0, []error{ErrNotMiner}},
		{"CGMiner not asked for", only(pb.Protocol_PROTOCOL_PROTO), []cgEvidence{api}, nil, nil, 0, []error{ErrNotMiner}},
		{"hostile and unknown", all, []cgEvidence{{port: 4028, err: fmt.Errorf("x: %w", ErrHostile)}}, []webEvidence{notMiner, hostile}, nil, 0,
			[]error{ErrHostile, ErrNotMiner, ErrHostile}},
		{"hostile web beside a good API", all, []cgEvidence{api}, []webEvidence{hostile},
			&pb.Device{MinerId: "s-hfser", Protocol: pb.Protocol_PROTOCOL_CGMINER, Address: "10.0.0.7:4028", Model: "Antminer S19", Serial: "HFSER"}, 1, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			found, errs := decide(addr, tc.req, ports, tc.cgs, tc.webs)
			if tc.want == nil {
				if found != nil {
					t.Fatalf("found %v, want none", found.Device)
				}
			} else {
				if found == nil {
					t.Fatalf("found nothing (errors %v), want %v", errs, tc.want)
				}
				if got := found.Device.String(); got != tc.want.String() {
					t.Fatalf("device\n got %s\nwant %s", got, tc.want)
				}
				if len(found.Notes) != tc.notes {
					t.Fatalf("notes %q, want %d", found.Notes, tc.notes)
				}
			}
			if len(errs) != len(tc.errKinds) {
				t.Fatalf("errors %v, want %d", errs, len(tc.errKinds))
			}
			for i, want := range tc.errKinds {
				if !errors.Is(errs[i], want) || errs[i].Addr != addr {
					t.Fatalf("error %d = %v, want %v", i, errs[i], want)
				}
			}
		})
	}
}

func TestDecideIgnoresUnusableMAC(t *testing.T) {
	found, _ := decide(netip.MustParseAddr("10.0.0.8"), &Request{}, DefaultPorts(), nil,
		[]webEvidence{{port: 80, proto: &webInfo{mac: "zz:zz", serial: "PR9\x07"}}})
	if found == nil || found.Device.GetMac() != "" || found.Device.GetMinerId() != "s-pr9" || len(found.Notes) != 1 {
		t.Fatalf("found %+v", found)
	}
}
