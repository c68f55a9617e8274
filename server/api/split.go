package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/messages/signing"
	"github.com/hashfleet/hashfleet/server/grains"
	"github.com/hashfleet/hashfleet/server/registry"
	"github.com/hashfleet/hashfleet/server/store"
	"google.golang.org/protobuf/encoding/protojson"
)

// Enrollment is what the enrollment endpoints need (server/registry.Registry).
type Enrollment interface {
	MintCode(site string, ttl time.Duration) (code string, expires time.Time, err error)
	Pending() ([]registry.PendingNode, error)
	Confirm(nodeID, fingerprint string) (*pb.NodeRecord, error)
	SecurityEvents(limit int) ([]store.SecurityEvent, error)
}

// KeyLifecycle is what the key endpoints need: the org's issuance keys, and rotation and revocation that
// reach every node.
type KeyLifecycle interface {
	List() []signing.KeyInfo
	Rotate(ctx context.Context, overlap time.Duration) (grains.KeyChange, error)
	Revoke(ctx context.Context, keyID string) (grains.KeyChange, error)
}

// Devices is what the pairing, node-audit and replay-proof endpoints need (*grains.Fleet).
type Devices interface {
	PendingDevices() ([]*pb.Device, error)
	PairDevices(ctx context.Context, node string, minerIDs []string) error
	NodeAudit(node string, limit int) ([]*pb.AuditRecord, error)
	SentCommand(node string, seq uint64) (*pb.ControlCommand, error)
	InjectCommand(ctx context.Context, node string, cmd *pb.ControlCommand) error
}

// DefaultRotationOverlap is how long a rotated-out key stays valid when the request names no overlap: long
// enough for a node that is offline for a day to receive the announcement signed by it.
const DefaultRotationOverlap = 24 * time.Hour

func (a *API) registerSplit() {
	a.handle("POST", "/api/v1/enrollment-codes", a.postEnrollmentCode)
	a.handle("GET", "/api/v1/nodes/pending", a.listPendingNodes)
	a.handle("POST", "/api/v1/nodes/{id}/confirm", a.confirmNode)
	a.handle("GET", "/api/v1/keys", a.listKeys)
	a.handle("POST", "/api/v1/keys/rotate", a.rotateKeys)
	a.handle("POST", "/api/v1/keys/{id}/revoke", a.revokeKey)
	a.handle("GET", "/api/v1/devices/pending", a.listPendingDevices)
	a.handle("POST", "/api/v1/nodes/{id}/devices", a.pairDevices)
	a.handle("GET", "/api/v1/nodes/{id}/audit", a.nodeAudit)
	a.handle("GET", "/api/v1/nodes/{id}/commands/{seq}", a.sentCommand)
	a.handle("POST", "/api/v1/nodes/{id}/inject", a.injectCommand)
	a.handle("GET", "/api/v1/security-events", a.securityEvents)
}

// decodeBody reads one JSON object into v: bounded size, no unknown fields. An empty body is allowed when
// optional is set (v keeps its zero value).
func (a *API) decodeBody(w http.ResponseWriter, r *http.Request, v any, optional bool) error {
	return DecodeJSON(w, r, a.cfg.MaxBodyBytes, v, "object", optional)
}

func (a *API) unavailable(w http.ResponseWriter, what string) {
	writeError(w, http.StatusServiceUnavailable, "unavailable", what+" is not available on this server")
}

type enrollmentCodeRequestJSON struct {
	Site string `json:"site"`
	TTLS int64  `json:"ttl_s"`
}

type enrollmentCodeJSON struct {
	Code      string    `json:"code"`
	ExpiresAt time.Time `json:"expires_at"`
	Site      string    `json:"site"`
}

func (a *API) postEnrollmentCode(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Enrollment == nil {
		a.unavailable(w, "enrollment (combined mode)")
		return
	}
	var in enrollmentCodeRequestJSON
	if err := a.decodeBody(w, r, &in, true); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	if in.TTLS < 0 {
		writeError(w, http.StatusBadRequest, "bad_request", "ttl_s must not be negative")
		return
	}
	code, exp, err := a.cfg.Enrollment.MintCode(in.Site, time.Duration(in.TTLS)*time.Second)
	if err != nil {
		if errors.Is(err, registry.ErrInvalid) {
			writeError(w, http.StatusBadRequest, "bad_request", err.Error())
			return
		}
		a.backendError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, enrollmentCodeJSON{Code: code, ExpiresAt: exp.UTC(), Site: in.Site})
}

type pendingNodeJSON struct {
	NodeID      string    `json:"node_id"`
	Name        string    `json:"name"`
	Site        string    `json:"site"`
	Fingerprint string    `json:"fingerprint"`
	EnrolledAt  time.Time `json:"enrolled_at"`
}

func (a *API) listPendingNodes(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Enrollment == nil {
		a.unavailable(w, "enrollment (combined mode)")
		return
	}
	ps, err := a.cfg.Enrollment.Pending()
	if err != nil {
		a.backendError(w, r, err)
		return
	}
	out := struct {
		Nodes []pendingNodeJSON `json:"nodes"`
	}{Nodes: []pendingNodeJSON{}}
	for _, p := range ps {
		out.Nodes = append(out.Nodes, pendingNodeJSON{NodeID: p.NodeID, Name: p.Name, Site: p.Site, Fingerprint: p.Fingerprint,
			EnrolledAt: p.EnrolledAt.UTC()})
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) confirmNode(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Enrollment == nil {
		a.unavailable(w, "enrollment (combined mode)")
		return
	}
	var in struct {
		Fingerprint string `json:"fingerprint"`
	}
	if err := a.decodeBody(w, r, &in, false); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	if in.Fingerprint == "" {
		writeError(w, http.StatusBadRequest, "bad_request", "fingerprint is required: the one the node printed at enrollment")
		return
	}
	rec, err := a.cfg.Enrollment.Confirm(r.PathValue("id"), in.Fingerprint)
	switch {
	case errors.Is(err, registry.ErrUnknownNode):
		writeError(w, http.StatusNotFound, "not_found", err.Error())
	case errors.Is(err, registry.ErrFingerprintMismatch), errors.Is(err, registry.ErrAlreadyConfirmed), errors.Is(err, registry.ErrRevoked):
		writeError(w, http.StatusConflict, "conflict", err.Error())
	case err != nil:
		a.backendError(w, r, err)
	default:
		writeJSON(w, http.StatusOK, map[string]any{"node_id": rec.GetNodeId(), "confirmed": true, "fingerprint": rec.GetIdentityFingerprint()})
	}
}

type keyJSON struct {
	KeyID       string     `json:"key_id"`
	State       string     `json:"state"`
	PublicKey   string     `json:"public_key"`
	Fingerprint string     `json:"fingerprint"`
	ValidFrom   *time.Time `json:"valid_from"`
	RetireAfter *time.Time `json:"retire_after"`
	Revoked     bool       `json:"revoked"`
}

func (a *API) listKeys(w http.ResponseWriter, _ *http.Request) {
	if a.cfg.Keys == nil {
		a.unavailable(w, "key management")
		return
	}
	out := struct {
		Keys []keyJSON `json:"keys"`
	}{Keys: []keyJSON{}}
	for _, k := range a.cfg.Keys.List() {
		out.Keys = append(out.Keys, keyJSON{KeyID: k.KeyID, State: k.State.String(),
			PublicKey:   base64.StdEncoding.EncodeToString(k.Key.GetPublicKey()),
			Fingerprint: signing.Fingerprint(k.Key.GetPublicKey()), ValidFrom: tsMs(k.Key.GetValidFromUnixMs()),
			RetireAfter: tsMs(k.Key.GetRetireAfterUnixMs()), Revoked: k.Key.GetRevoked()})
	}
	writeJSON(w, http.StatusOK, out)
}

type keyChangeJSON struct {
	KeyID       string     `json:"key_id"`
	SignerKeyID string     `json:"signer_key_id,omitempty"`
	RetireAt    *time.Time `json:"retire_at,omitempty"`
	Nodes       []string   `json:"nodes"`
}

func (a *API) keyError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, grains.ErrUnknownKey):
		writeError(w, http.StatusNotFound, "not_found", err.Error())
	case errors.Is(err, grains.ErrKeys):
		writeError(w, http.StatusConflict, "conflict", err.Error())
	default:
		a.backendError(w, r, err)
	}
}

func (a *API) rotateKeys(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Keys == nil {
		a.unavailable(w, "key management")
		return
	}
	var in struct {
		OverlapS int64 `json:"overlap_s"`
	}
	if err := a.decodeBody(w, r, &in, true); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	overlap := DefaultRotationOverlap
	switch {
	case in.OverlapS < 0 || in.OverlapS > 90*24*3600:
		writeError(w, http.StatusBadRequest, "bad_request", "overlap_s must be in [1, 7776000] (90 days); 0 or absent means 86400")
		return
	case in.OverlapS > 0:
		overlap = time.Duration(in.OverlapS) * time.Second
	}
	ch, err := a.cfg.Keys.Rotate(r.Context(), overlap)
	if err != nil {
		a.keyError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, keyChangeJSON{KeyID: ch.KeyID, SignerKeyID: ch.SignerKeyID, RetireAt: ts(ch.RetireAt), Nodes: orEmpty(ch.NodesNotified)})
}

func (a *API) revokeKey(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Keys == nil {
		a.unavailable(w, "key management")
		return
	}
	ch, err := a.cfg.Keys.Revoke(r.Context(), r.PathValue("id"))
	if err != nil {
		a.keyError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, keyChangeJSON{KeyID: ch.KeyID, Nodes: orEmpty(ch.NodesNotified)})
}

type pendingDeviceJSON struct {
	MinerID  string `json:"miner_id"`
	Node     string `json:"node"`
	Address  string `json:"address"`
	Protocol string `json:"protocol"`
	Model    string `json:"model"`
	Serial   string `json:"serial"`
	MAC      string `json:"mac"`
}

func (a *API) listPendingDevices(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Devices == nil {
		a.unavailable(w, "device pairing")
		return
	}
	ds, err := a.cfg.Devices.PendingDevices()
	if err != nil {
		a.backendError(w, r, err)
		return
	}
	node := r.URL.Query().Get("node")
	out := struct {
		Devices []pendingDeviceJSON `json:"devices"`
	}{Devices: []pendingDeviceJSON{}}
	for _, d := range ds {
		if node != "" && d.GetNodeId() != node {
			continue
		}
		out.Devices = append(out.Devices, pendingDeviceJSON{MinerID: d.GetMinerId(), Node: d.GetNodeId(), Address: d.GetAddress(),
			Protocol: protocolName(d.GetProtocol()), Model: d.GetModel(), Serial: d.GetSerial(), MAC: d.GetMac()})
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) pairDevices(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Devices == nil {
		a.unavailable(w, "device pairing")
		return
	}
	var in struct {
		MinerIDs []string `json:"miner_ids"`
	}
	if err := a.decodeBody(w, r, &in, false); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	if len(in.MinerIDs) == 0 {
		writeError(w, http.StatusBadRequest, "bad_request", "miner_ids is empty")
		return
	}
	node := r.PathValue("id")
	if err := a.cfg.Devices.PairDevices(r.Context(), node, in.MinerIDs); err != nil {
		switch {
		case errors.Is(err, grains.ErrUnknownMiner), errors.Is(err, grains.ErrInvalidNode):
			writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		default:
			a.backendError(w, r, err)
		}
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"node": node, "paired": len(in.MinerIDs)})
}

type auditJSON struct {
	At         *time.Time `json:"at"`
	CommandID  string     `json:"command_id"`
	Actor      string     `json:"actor"`
	Seq        uint64     `json:"seq"`
	KeyID      string     `json:"key_id"`
	Code       string     `json:"code"`
	Message    string     `json:"message"`
	MinerIDs   []string   `json:"miner_ids"`
	LeaseEpoch uint64     `json:"lease_epoch"`
	Signature  string     `json:"signature"`
	// LocalOrigin: a command issued at the site (the node's local UI), backfilled by the node.
	LocalOrigin bool `json:"local_origin"`
}

func (a *API) nodeAudit(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Devices == nil {
		a.unavailable(w, "node audit")
		return
	}
	limit, err := intParam(r.URL.Query().Get("limit"), "limit", 10_000)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	recs, err := a.cfg.Devices.NodeAudit(r.PathValue("id"), limit)
	if err != nil {
		if errors.Is(err, store.ErrInvalidKey) {
			writeError(w, http.StatusBadRequest, "bad_request", err.Error())
			return
		}
		a.backendError(w, r, err)
		return
	}
	out := struct {
		Records []auditJSON `json:"records"`
	}{Records: []auditJSON{}}
	for _, rec := range recs {
		out.Records = append(out.Records, auditJSON{At: tsMs(rec.GetAtUnixMs()), CommandID: rec.GetCommandId(), Actor: rec.GetActor(),
			Seq: rec.GetMonotonicSeq(), KeyID: rec.GetKeyId(), Code: grains.ResultCodeName(rec.GetCode()), Message: rec.GetMessage(),
			MinerIDs: orEmpty(rec.GetMinerIds()), LeaseEpoch: rec.GetLeaseEpoch(), Signature: base64.StdEncoding.EncodeToString(rec.GetSignature()),
			LocalOrigin: rec.GetLocalOrigin()})
	}
	writeJSON(w, http.StatusOK, out)
}

// signedCommandJSON carries a ControlCommand in the protobuf JSON mapping (bytes as base64), exactly as
// signed: what GET .../commands/{seq} returns and POST .../inject takes.
type signedCommandJSON struct {
	Command json.RawMessage `json:"command"`
}

func (a *API) sentCommand(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Devices == nil {
		a.unavailable(w, "command archive")
		return
	}
	seq, err := strconv.ParseUint(r.PathValue("seq"), 10, 64)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", "seq must be a positive integer")
		return
	}
	cmd, err := a.cfg.Devices.SentCommand(r.PathValue("id"), seq)
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, "not_found", err.Error())
		return
	case errors.Is(err, store.ErrInvalidKey):
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	case err != nil:
		a.backendError(w, r, err)
		return
	}
	b, err := protojson.Marshal(cmd)
	if err != nil {
		a.backendError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, signedCommandJSON{Command: b})
}

func (a *API) injectCommand(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Devices == nil || !a.cfg.DebugInject {
		writeError(w, http.StatusNotFound, "not_found", "command injection is off: it exists only on a server started with --debug-inject")
		return
	}
	var in signedCommandJSON
	if err := a.decodeBody(w, r, &in, false); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	cmd := &pb.ControlCommand{}
	if err := protojson.Unmarshal(in.Command, cmd); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", "command is not a ControlCommand in the protobuf JSON mapping: "+err.Error())
		return
	}
	if err := a.cfg.Devices.InjectCommand(r.Context(), r.PathValue("id"), cmd); err != nil {
		switch {
		case errors.Is(err, grains.ErrNotConnected):
			writeError(w, http.StatusConflict, "conflict", err.Error())
		case errors.Is(err, grains.ErrInvalidNode):
			writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		default:
			a.backendError(w, r, err)
		}
		return
	}
	a.log.Warn("api: raw command injected on a node stream (debug)", "node", r.PathValue("id"), "seq", cmd.GetMonotonicSeq())
	writeJSON(w, http.StatusAccepted, map[string]any{"injected": true, "node": r.PathValue("id"), "seq": cmd.GetMonotonicSeq()})
}

func (a *API) securityEvents(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Enrollment == nil {
		a.unavailable(w, "the security event log (combined mode)")
		return
	}
	limit, err := intParam(r.URL.Query().Get("limit"), "limit", 10_000)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	evs, err := a.cfg.Enrollment.SecurityEvents(limit)
	if err != nil {
		a.backendError(w, r, err)
		return
	}
	out := struct {
		Events []store.SecurityEvent `json:"events"`
	}{Events: orEmpty(evs)}
	writeJSON(w, http.StatusOK, out)
}
