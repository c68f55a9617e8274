package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/hashfleet/hashfleet/actors/badgerkv/inspect"
	"github.com/hashfleet/hashfleet/messages/pb"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Schema describes the server store's keys (doc.go) to the store inspector.
func Schema() inspect.Schema {
	return inspect.Schema{
		Kind: "server",
		Doc:  "cloud server store: device registry, latest telemetry, operator commands, node command queues and seq counters, ingest dedup marks, enrollment and security events",
		Prefixes: []inspect.Prefix{
			{Name: "device", Prefix: pDevice, Message: &pb.Device{}},
			{Name: "telemetry", Prefix: pTelemetry, Message: &pb.Telemetry{}},
			{Name: "command", Prefix: pCommand, Message: &pb.CommandRecord{}},
			{Name: "active-command", Prefix: pActive, Type: "(empty: index of unfinished commands)",
				Decode: func(_, _ []byte) (proto.Message, error) { return nil, nil }},
			{Name: "idempotency-key", Prefix: pIdem, Type: "command id (text)",
				Decode: func(_, v []byte) (proto.Message, error) { return wrapperspb.String(string(v)), nil }},
			{Name: "node-seq", Prefix: pNodeSeq, Message: &pb.SeqMark{}},
			{Name: "node-queue", Prefix: pQueue, Message: &pb.ControlCommand{},
				Match:     func(rest []byte) bool { return len(rest) > 9 && rest[len(rest)-9] == '/' },
				FormatKey: formatQueueKey, ParseKey: parseQueueKey},
			{Name: "mark", Prefix: pMark, Message: &pb.SeqMark{}},
			{Name: "sent-command", Prefix: pSent, Message: &pb.ControlCommand{},
				Match:     func(rest []byte) bool { return len(rest) > 9 && rest[len(rest)-9] == '/' },
				FormatKey: formatQueueKey, ParseKey: parseQueueKey},
			{Name: "node-audit", Prefix: pNodeAudit, Message: &pb.AuditRecord{},
				Match:     func(rest []byte) bool { return len(rest) > 17 && rest[len(rest)-17] == '/' },
				FormatKey: formatNodeAuditKey, ParseKey: parseNodeAuditKey},
			{Name: "pending-device", Prefix: pPending, Message: &pb.Device{}},
			{Name: "scan", Prefix: pScan, Message: &pb.ScanRecord{}},
			{Name: "pairing", Prefix: pPairing, Message: &pb.PairingRecord{}},
			{Name: "warm-standby-pair", Prefix: pWPair, Type: "JSON (PairRecord: members, devices, sealed pair keys, holder history)",
				Decode: inspect.JSONStruct},
			{Name: "site-policy", Prefix: pSitePolicy, Message: &pb.SitePolicy{}},
			{Name: "rollout", Prefix: pRollout, Type: "JSON (rollout record: status, firmware, pre-update hashrates)",
				Decode: inspect.JSONStruct},
			{Name: "curtail-status", Prefix: pCurtailStat, Message: &pb.CurtailStatus{}},
			// The credential vault (server/credentials) shares this Badger under "cred/": ciphertext and
			// workflow state only.
			{Name: "credential", Prefix: "cred/dev/", Type: "JSON (credentials.DeviceRecord: sealed envelopes, never plaintext)",
				Decode: inspect.JSONStruct},
			{Name: "credential-index", Prefix: "cred/", Type: "(vault indexes: empty, or JSON)",
				Decode: func(_, _ []byte) (proto.Message, error) { return nil, nil }},
			{Name: "node-record", Prefix: pNodeRec, Message: &pb.NodeRecord{}},
			{Name: "enroll-code", Prefix: pCode, Type: "JSON (enroll.CodeRecord, keyed by HMAC)", Decode: inspect.JSONStruct},
			{Name: "secret", Prefix: keySecret, Exact: true, Type: "secret (never shown)",
				Decode: func(_, v []byte) (proto.Message, error) {
					return inspect.Struct(map[string]any{"redacted": true, "bytes": len(v)})
				}},
			// Users and API keys (server/users) share this Badger under "users/": hashes only, redacted here.
			{Name: "user", Prefix: "users/u/", Type: "JSON (users.UserRecord: role and bcrypt hash, hash redacted)", Decode: redactHash},
			{Name: "api-key", Prefix: "users/k/", Type: "JSON (users.KeyRecord: role and SHA-256 of the secret, hash redacted)", Decode: redactHash},
			// The security event log is the server's own audit trail, in time order across nodes.
			{Name: "security-event", Prefix: pSecEvent, Type: "JSON (SecurityEvent)", Decode: inspect.JSONStruct, Audit: true,
				Match: func(rest []byte) bool { return len(rest) == 16 }, FormatKey: formatTimeKey, ParseKey: parseTimeKey},
		},
		Summarize: summarize,
	}
}

// formatQueueKey renders <node>/<seq BE8> as "<node>/<seq>".
func formatQueueKey(rest []byte) string {
	if len(rest) < 9 {
		return inspect.Printable(rest)
	}
	return string(rest[:len(rest)-8]) + strconv.FormatUint(binary.BigEndian.Uint64(rest[len(rest)-8:]), 10)
}

func parseQueueKey(rest string) ([]byte, error) {
	i := strings.LastIndexByte(rest, '/')
	if i < 0 {
		return nil, fmt.Errorf("want <node>/<seq> after the prefix, got %q", rest)
	}
	seq, err := strconv.ParseUint(rest[i+1:], 10, 64)
	if err != nil {
		return nil, fmt.Errorf("want <node>/<seq> after the prefix, got %q", rest)
	}
	return binary.BigEndian.AppendUint64([]byte(rest[:i+1]), seq), nil
}

// formatTimeKey renders <ms BE8><n BE8> as "<ms>/<n>".
func formatTimeKey(rest []byte) string {
	if len(rest) != 16 {
		return inspect.Printable(rest)
	}
	return strconv.FormatUint(binary.BigEndian.Uint64(rest), 10) + "/" + strconv.FormatUint(binary.BigEndian.Uint64(rest[8:]), 10)
}

func parseTimeKey(rest string) ([]byte, error) {
	ms, n, ok := strings.Cut(rest, "/")
	a, err1 := strconv.ParseUint(ms, 10, 64)
	b, err2 := strconv.ParseUint(n, 10, 64)
	if !ok || err1 != nil || err2 != nil {
		return nil, fmt.Errorf("want <unix_ms>/<n> after the prefix, got %q", rest)
	}
	return binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, a), b), nil
}

// formatNodeAuditKey renders <node>/<ms BE8><n BE8> as "<node>/<ms>/<n>".
func formatNodeAuditKey(rest []byte) string {
	if len(rest) < 17 {
		return inspect.Printable(rest)
	}
	return string(rest[:len(rest)-16]) + formatTimeKey(rest[len(rest)-16:])
}

func parseNodeAuditKey(rest string) ([]byte, error) {
	i := strings.IndexByte(rest, '/')
	if i < 0 {
		return nil, fmt.Errorf("want <node>/<unix_ms>/<n> after the prefix, got %q", rest)
	}
	t, err := parseTimeKey(rest[i+1:])
	if err != nil {
		return nil, fmt.Errorf("want <node>/<unix_ms>/<n> after the prefix, got %q", rest)
	}
	return append([]byte(rest[:i+1]), t...), nil
}

// maxNodeFacts bounds the per-node lines in a summary.
const maxNodeFacts = 20

func summarize(r *inspect.Reader, s *inspect.Summary) error {
	devices, owned := 0, 0
	err := r.Each([]byte(pDevice), false, func(k, v []byte) (bool, error) {
		var d pb.Device
		if err := proto.Unmarshal(v, &d); err != nil {
			return false, fmt.Errorf("decode %s: %w", k, err)
		}
		devices++
		if d.GetNodeId() != "" {
			owned++
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	s.OwnedDevices = &owned
	s.Add("registered devices", devices)
	var top uint64
	nodes := 0
	err = r.Each([]byte(pNodeSeq), false, func(k, v []byte) (bool, error) {
		var m pb.SeqMark
		if err := proto.Unmarshal(v, &m); err != nil {
			return false, fmt.Errorf("decode %s: %w", k, err)
		}
		nodes++
		top = max(top, m.GetSeq())
		if nodes <= maxNodeFacts {
			node := string(bytes.TrimPrefix(k, []byte(pNodeSeq)))
			s.Add("node "+node+" command seq", m.GetSeq())
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	if nodes > 0 {
		s.SeqHighWaterMark = &top
		s.Add("seq high-water mark is", "the highest command seq allocated to any node")
	}
	s.Add("nodes with a command seq", nodes)
	s.Add("queued commands (no final report yet)", r.Count([]byte(pQueue)))
	s.Add("operator commands", r.Count([]byte(pCommand)))
	s.Add("unfinished operator commands", r.Count([]byte(pActive)))
	s.Add("miners with telemetry", r.Count([]byte(pTelemetry)))
	s.Add("devices waiting to be paired", r.Count([]byte(pPending)))
	s.Add("enrolled node records", r.Count([]byte(pNodeRec)))
	s.Add("node audit records (from COMMAND_AUDIT events)", r.Count([]byte(pNodeAudit)))
	s.Add("security events", r.Count([]byte(pSecEvent)))
	marks := 0
	return r.Each([]byte(pMark), false, func(k, v []byte) (bool, error) {
		var m pb.SeqMark
		if err := proto.Unmarshal(v, &m); err != nil {
			return false, fmt.Errorf("decode %s: %w", k, err)
		}
		if marks++; marks <= maxNodeFacts {
			s.Add("ingest mark "+string(bytes.TrimPrefix(k, []byte(pMark))), m.GetSeq())
		}
		return true, nil
	})
}

// redactHash decodes a JSON record and hides its "hash" field (a password or key hash is no secret, but it
// has no business in an inspection dump either).
func redactHash(_, v []byte) (proto.Message, error) {
	var m map[string]any
	if err := json.Unmarshal(v, &m); err != nil {
		return nil, err
	}
	if _, ok := m["hash"]; ok {
		m["hash"] = "redacted"
	}
	return inspect.Struct(m)
}
