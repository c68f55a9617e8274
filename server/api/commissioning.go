package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/server/grains"
)

// Commissioning is what the discovery, device and pairing endpoints need (*grains.Fleet).
type Commissioning interface {
	StartScan(ctx context.Context, r grains.ScanRequest) (grains.ScanStarted, error)
	Scan(id string) (*pb.ScanRecord, error)
	Scans(limit int) ([]*pb.ScanRecord, error)
	StartPairing(ctx context.Context, r grains.PairingRequest) (grains.PairingStarted, error)
	Pairing(id string) (*pb.PairingRecord, error)
	DeviceList(status string) ([]grains.DeviceEntry, error)
}

// Pairing waits: POST /pairings answers when the node has reported every device, or after wait_s.
const (
	DefaultPairingWait = 30 * time.Second
	maxPairingWait     = 120 * time.Second
	pairingPoll        = 50 * time.Millisecond
)

func (a *API) registerCommissioning() {
	a.handle("POST", "/api/v1/discovery", a.postDiscovery)
	a.handle("GET", "/api/v1/discovery", a.listDiscovery)
	a.handle("GET", "/api/v1/discovery/{id}", a.getDiscovery)
	a.handle("GET", "/api/v1/devices", a.listDevices)
	a.handle("POST", "/api/v1/pairings", a.postPairing)
	a.handle("GET", "/api/v1/pairings/{id}", a.getPairing)
}

// credentialsJSON is a login given to a scan or a pairing. The password is sealed to the node at once and
// never stored, logged or returned.
type credentialsJSON struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

type portsJSON struct {
	CGMiner     []int32 `json:"cgminer"`
	AntminerWeb []int32 `json:"antminer_web"`
	Proto       []int32 `json:"proto"`
	TLS         []int32 `json:"tls"`
}

type discoveryRequestJSON struct {
	Node        string           `json:"node"`
	Targets     []string         `json:"targets"`
	Ports       portsJSON        `json:"ports"`
	Protocols   []string         `json:"protocols"`
	Credentials *credentialsJSON `json:"credentials"`
}

func parseProtocol(s string) (pb.Protocol, bool) {
	for _, p := range []pb.Protocol{pb.Protocol_PROTOCOL_CGMINER, pb.Protocol_PROTOCOL_ANTMINER, pb.Protocol_PROTOCOL_PROTO,
		pb.Protocol_PROTOCOL_WHATSMINER} {
		if protocolName(p) == strings.ToLower(strings.TrimSpace(s)) {
			return p, true
		}
	}
	return 0, false
}

func (a *API) commissioningError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, grains.ErrInvalidScan), errors.Is(err, grains.ErrInvalidPairing), errors.Is(err, grains.ErrInvalidNode),
		errors.Is(err, grains.ErrUnknownMiner), errors.Is(err, grains.ErrNoCredentialKey):
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
	case errors.Is(err, grains.ErrOwnedElsewhere):
		writeError(w, http.StatusConflict, "conflict", err.Error())
	case errors.Is(err, grains.ErrUnknownScan), errors.Is(err, grains.ErrUnknownPairing):
		writeError(w, http.StatusNotFound, "not_found", err.Error())
	default:
		a.backendError(w, r, err)
	}
}

func (a *API) postDiscovery(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Commissioning == nil {
		a.unavailable(w, "discovery")
		return
	}
	var in discoveryRequestJSON
	if err := a.decodeBody(w, r, &in, false); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	req := grains.ScanRequest{Node: in.Node, Targets: in.Targets, CGMinerPorts: in.Ports.CGMiner,
		AntminerWebPorts: in.Ports.AntminerWeb, ProtoPorts: in.Ports.Proto, TLSPorts: in.Ports.TLS, Actor: "user:admin"}
	for _, s := range in.Protocols {
		p, ok := parseProtocol(s)
		if !ok {
			writeError(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("unknown protocol %q (want cgminer, antminer, proto or whatsminer)", s))
			return
		}
		req.Protocols = append(req.Protocols, p)
	}
	if c := in.Credentials; c != nil && c.Password != "" {
		req.Username, req.Password = c.Username, []byte(c.Password)
		if req.Username == "" {
			req.Username = "root"
		}
	}
	started, err := a.cfg.Commissioning.StartScan(r.Context(), req)
	if err != nil {
		a.commissioningError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/discovery/"+started.ScanID)
	writeJSON(w, http.StatusAccepted, map[string]string{"scan_id": started.ScanID, "node": started.Node, "state": grains.ScanRequested})
}

type scanProgressJSON struct {
	Total  int32 `json:"total"`
	Probed int32 `json:"probed"`
	Found  int32 `json:"found"`
	Errors int32 `json:"errors"`
}

type deviceJSON struct {
	DeviceID   string `json:"device_id"`
	Node       string `json:"node"`
	Status     string `json:"status"`
	Address    string `json:"address"`
	WebAddress string `json:"web_address"`
	Protocol   string `json:"protocol"`
	Model      string `json:"model"`
	Serial     string `json:"serial"`
	MAC        string `json:"mac"`
	// Pairing is the latest pairing attempt (null: none).
	Pairing *devicePairingJSON `json:"pairing"`
}

type devicePairingJSON struct {
	PairingID        string     `json:"pairing_id,omitempty"`
	DeviceID         string     `json:"device_id"`
	Status           string     `json:"status"`
	Code             string     `json:"code"`
	Message          string     `json:"message"`
	CredentialsGiven bool       `json:"credentials_given"`
	At               *time.Time `json:"at"`
}

type scanJSON struct {
	ScanID     string           `json:"scan_id"`
	Node       string           `json:"node"`
	State      string           `json:"state"`
	Targets    []string         `json:"targets"`
	Protocols  []string         `json:"protocols"`
	Progress   scanProgressJSON `json:"progress"`
	Message    string           `json:"message"`
	CreatedAt  *time.Time       `json:"created_at"`
	StartedAt  *time.Time       `json:"started_at"`
	FinishedAt *time.Time       `json:"finished_at"`
	Devices    []deviceJSON     `json:"devices,omitempty"`
	Errors     []string         `json:"errors,omitempty"`
}

func toDevice(d *pb.Device, status string) deviceJSON {
	return deviceJSON{DeviceID: d.GetMinerId(), Node: d.GetNodeId(), Status: status, Address: d.GetAddress(),
		WebAddress: d.GetWebAddress(), Protocol: protocolName(d.GetProtocol()), Model: d.GetModel(), Serial: d.GetSerial(), MAC: d.GetMac()}
}

func toScan(rec *pb.ScanRecord) scanJSON {
	out := scanJSON{ScanID: rec.GetScanId(), Node: rec.GetNodeId(), State: rec.GetState(), Targets: orEmpty(rec.GetTargets()),
		Protocols: []string{}, Message: rec.GetMessage(), CreatedAt: tsMs(rec.GetCreatedAtUnixMs()),
		StartedAt: tsMs(rec.GetStartedAtUnixMs()), FinishedAt: tsMs(rec.GetFinishedAtUnixMs()),
		Progress: scanProgressJSON{Total: rec.GetTotal(), Probed: rec.GetProbed(), Found: rec.GetFoundCount(), Errors: rec.GetErrorCount()}}
	for _, p := range rec.GetProtocols() {
		out.Protocols = append(out.Protocols, protocolName(p))
	}
	return out
}

func toDevicePairing(d *pb.DevicePairing, pairingID string) *devicePairingJSON {
	if d == nil {
		return nil
	}
	return &devicePairingJSON{PairingID: pairingID, DeviceID: d.GetMinerId(), Status: grains.PairingStatus(d.GetCode()),
		Code: grains.ResultCodeName(d.GetCode()), Message: d.GetMessage(), CredentialsGiven: d.GetCredentialsGiven(), At: tsMs(d.GetAtUnixMs())}
}

func (a *API) listDiscovery(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Commissioning == nil {
		a.unavailable(w, "discovery")
		return
	}
	limit, err := intParam(r.URL.Query().Get("limit"), "limit", 1000)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	recs, err := a.cfg.Commissioning.Scans(limit)
	if err != nil {
		a.commissioningError(w, r, err)
		return
	}
	out := struct {
		Scans []scanJSON `json:"scans"`
	}{Scans: []scanJSON{}}
	for _, rec := range recs {
		out.Scans = append(out.Scans, toScan(rec))
	}
	writeJSON(w, http.StatusOK, out)
}

// getDiscovery shows a scan's progress and results; each device found says whether it is paired now.
func (a *API) getDiscovery(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Commissioning == nil {
		a.unavailable(w, "discovery")
		return
	}
	rec, err := a.cfg.Commissioning.Scan(r.PathValue("id"))
	if err != nil {
		a.commissioningError(w, r, err)
		return
	}
	paired, err := a.cfg.Commissioning.DeviceList(grains.DevicePaired)
	if err != nil {
		a.commissioningError(w, r, err)
		return
	}
	owner := make(map[string]string, len(paired))
	for _, e := range paired {
		owner[e.Device.GetMinerId()] = e.Device.GetNodeId()
	}
	out := toScan(rec)
	out.Devices, out.Errors = []deviceJSON{}, orEmpty(rec.GetErrors())
	for _, d := range rec.GetFound() {
		dj := toDevice(d, grains.DeviceDiscovered)
		dj.Node = rec.GetNodeId()
		if n, ok := owner[d.GetMinerId()]; ok {
			dj.Status, dj.Node = grains.DevicePaired, n
		}
		out.Devices = append(out.Devices, dj)
	}
	writeJSON(w, http.StatusOK, out)
}

// listDevices lists devices: ?status=discovered (reported by a node, not paired), ?status=paired, or both;
// ?node= narrows to one node.
func (a *API) listDevices(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Commissioning == nil {
		a.unavailable(w, "devices")
		return
	}
	q := r.URL.Query()
	status := strings.ToLower(q.Get("status"))
	if status != "" && status != grains.DeviceDiscovered && status != grains.DevicePaired {
		writeError(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("status %q: want discovered or paired", status))
		return
	}
	entries, err := a.cfg.Commissioning.DeviceList(status)
	if err != nil {
		a.commissioningError(w, r, err)
		return
	}
	node := q.Get("node")
	out := struct {
		Devices []deviceJSON `json:"devices"`
	}{Devices: []deviceJSON{}}
	for _, e := range entries {
		if node != "" && e.Device.GetNodeId() != node {
			continue
		}
		dj := toDevice(e.Device, e.Status)
		dj.Pairing = toDevicePairing(e.Pairing, e.PairingID)
		out.Devices = append(out.Devices, dj)
	}
	writeJSON(w, http.StatusOK, out)
}

type pairingRequestJSON struct {
	DeviceIDs   []string         `json:"device_ids"`
	Node        string           `json:"node"`
	Credentials *credentialsJSON `json:"credentials"`
	// WaitS is how long to wait for the node's answer (default 30, at most 120; 0 answers at once).
	WaitS *int `json:"wait_s"`
}

type pairingJSON struct {
	PairingID  string              `json:"pairing_id"`
	Node       string              `json:"node"`
	Status     string              `json:"status"` // pending (the node has not answered for every device) or done
	CreatedAt  *time.Time          `json:"created_at"`
	FinishedAt *time.Time          `json:"finished_at"`
	Summary    map[string]int      `json:"summary"`
	Devices    []devicePairingJSON `json:"devices"`
}

func toPairing(rec *pb.PairingRecord) pairingJSON {
	out := pairingJSON{PairingID: rec.GetPairingId(), Node: rec.GetNodeId(), Status: "pending", CreatedAt: tsMs(rec.GetCreatedAtUnixMs()),
		FinishedAt: tsMs(rec.GetFinishedAtUnixMs()), Summary: map[string]int{}, Devices: []devicePairingJSON{}}
	if rec.GetFinishedAtUnixMs() != 0 {
		out.Status = "done"
	}
	for _, d := range rec.GetDevices() {
		dj := toDevicePairing(d, "")
		out.Devices = append(out.Devices, *dj)
		out.Summary[dj.Status]++
	}
	return out
}

// postPairing pairs discovered devices to a node and, by default, waits for the node's answer: 200 with
// every device's outcome, or 202 while the node has not answered (GET /pairings/{id} follows it).
func (a *API) postPairing(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Commissioning == nil {
		a.unavailable(w, "pairing")
		return
	}
	var in pairingRequestJSON
	if err := a.decodeBody(w, r, &in, false); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	if len(in.DeviceIDs) == 0 {
		writeError(w, http.StatusBadRequest, "bad_request", "device_ids is empty")
		return
	}
	wait := DefaultPairingWait
	if in.WaitS != nil {
		if *in.WaitS < 0 || time.Duration(*in.WaitS)*time.Second > maxPairingWait {
			writeError(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("wait_s must be in [0, %d]", int(maxPairingWait/time.Second)))
			return
		}
		wait = time.Duration(*in.WaitS) * time.Second
	}
	req := grains.PairingRequest{Node: in.Node, MinerIDs: in.DeviceIDs, Actor: "user:admin"}
	if c := in.Credentials; c != nil && c.Password != "" {
		req.Username, req.Password = c.Username, []byte(c.Password)
		if req.Username == "" {
			req.Username = "root"
		}
	}
	started, err := a.cfg.Commissioning.StartPairing(r.Context(), req)
	if err != nil {
		a.commissioningError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/pairings/"+started.PairingID)
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	tick := time.NewTicker(pairingPoll)
	defer tick.Stop()
	for {
		rec, err := a.cfg.Commissioning.Pairing(started.PairingID)
		if err != nil {
			a.commissioningError(w, r, err)
			return
		}
		if rec.GetFinishedAtUnixMs() != 0 {
			writeJSON(w, http.StatusOK, toPairing(rec))
			return
		}
		select {
		case <-tick.C:
			continue
		case <-deadline.C:
		case <-r.Context().Done():
		}
		writeJSON(w, http.StatusAccepted, toPairing(rec))
		return
	}
}

func (a *API) getPairing(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Commissioning == nil {
		a.unavailable(w, "pairing")
		return
	}
	rec, err := a.cfg.Commissioning.Pairing(r.PathValue("id"))
	if err != nil {
		a.commissioningError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toPairing(rec))
}
