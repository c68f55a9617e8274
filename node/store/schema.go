package store

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hashfleet/hashfleet/actors/badgerkv/inspect"
	"github.com/hashfleet/hashfleet/messages/pb"
	"google.golang.org/protobuf/proto"
)

// Schema describes the node store's keys (doc.go) to the store inspector.
func Schema() inspect.Schema {
	return inspect.Schema{
		Kind: "node",
		Doc:  "fleet node store: command seq high-water mark, audit log, accepted commands and their results, confirmed ownership, command keyring, batch seq reservations",
		Prefixes: []inspect.Prefix{
			{Name: "seq-mark", Prefix: string(keySeqMark), Exact: true, Message: &pb.SeqMark{}},
			{Name: "audit", Prefix: string(prefixAudit), Message: &pb.AuditRecord{}, Audit: true,
				Match: func(rest []byte) bool { return len(rest) == 16 }, FormatKey: formatAuditKey, ParseKey: parseAuditKey},
			{Name: "command", Prefix: string(prefixCommand), Message: &pb.AuditRecord{},
				Match: inspect.Uint64Key, FormatKey: inspect.FormatUint64, ParseKey: inspect.ParseUint64},
			{Name: "result", Prefix: string(prefixResult), Message: &pb.CommandResultReport{},
				Match: inspect.Uint64Key, FormatKey: inspect.FormatUint64, ParseKey: inspect.ParseUint64},
			{Name: "ownership", Prefix: string(keyOwnership), Exact: true, Message: &pb.HelloAck{}},
			{Name: "batch-seq", Prefix: prefixBatch, Message: &pb.SeqMark{}},
			{Name: "site-policy", Prefix: string(keySitePolicy), Exact: true, Message: &pb.SitePolicy{}},
			{Name: "curtail-state", Prefix: string(keyCurtailState), Exact: true, Type: "JSON (node/curtail.State)",
				Decode: inspect.JSONStruct},
			{Name: "keyring", Prefix: string(keyKeyring), Exact: true, Type: "hashfleet.v1.EnrollResponse (org id, command keys)",
				Decode: func(_, v []byte) (proto.Message, error) {
					var r pb.EnrollResponse
					if err := proto.Unmarshal(v, &r); err != nil {
						return nil, err
					}
					if r.GetApiKey() != "" {
						r.ApiKey = "(redacted)" // never printed, should one ever be stored here
					}
					return &r, nil
				}},
			localCommandLog, localCommandByID, localCommandByKey,
		},
		Summarize: summarize,
	}
}

// formatAuditKey renders <at_ms BE8><n BE8> as "<at_ms>/<n>".
func formatAuditKey(rest []byte) string {
	if len(rest) != 16 {
		return inspect.Printable(rest)
	}
	return fmt.Sprintf("%d/%d", binary.BigEndian.Uint64(rest), binary.BigEndian.Uint64(rest[8:]))
}

func parseAuditKey(rest string) ([]byte, error) {
	at, n, ok := strings.Cut(rest, "/")
	a, err1 := strconv.ParseUint(at, 10, 64)
	b, err2 := strconv.ParseUint(n, 10, 64)
	if !ok || err1 != nil || err2 != nil {
		return nil, fmt.Errorf("want <at_unix_ms>/<n> after the prefix, got %q", rest)
	}
	return binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, a), b), nil
}

func summarize(r *inspect.Reader, s *inspect.Summary) error {
	var mark pb.SeqMark
	found, err := r.GetProto(keySeqMark, &mark)
	if err != nil {
		return err
	}
	seq := mark.GetSeq()
	s.SeqHighWaterMark = &seq
	if found && mark.GetUpdatedAtUnixMs() > 0 {
		s.Add("seq mark updated", time.UnixMilli(mark.GetUpdatedAtUnixMs()).UTC().Format(time.RFC3339))
	}
	var own pb.HelloAck
	if found, err := r.GetProto(keyOwnership, &own); err != nil {
		return err
	} else if found {
		n := len(own.GetDevices())
		s.OwnedDevices = &n
	} else {
		s.Add("owned devices", "none saved (the cloud never sent an ownership map)")
	}
	// The node store keeps no lease record of its own; the gate stamps every audit record with the epoch it
	// checked, so the newest one is the last epoch the node acted under.
	err = r.Each(prefixAudit, true, func(_, v []byte) (bool, error) {
		var rec pb.AuditRecord
		if err := proto.Unmarshal(v, &rec); err != nil {
			return false, fmt.Errorf("decode newest audit record: %w", err)
		}
		if e := rec.GetLeaseEpoch(); e > 0 {
			s.LeaseEpoch = &e
			s.Add("lease epoch from", "the newest audit record")
		}
		s.Add("newest audit record", fmt.Sprintf("%s seq %d %s", time.UnixMilli(rec.GetAtUnixMs()).UTC().Format(time.RFC3339),
			rec.GetMonotonicSeq(), strings.TrimPrefix(rec.GetCode().String(), "RESULT_CODE_")))
		return false, nil
	})
	if err != nil {
		return err
	}
	s.Add("audit records", r.Count(prefixAudit))
	s.Add("commands with a recorded result", r.Count(prefixResult))
	var kr pb.EnrollResponse
	if found, err := r.GetProto(keyKeyring, &kr); err != nil {
		return err
	} else if found {
		s.Add("command keys in the keyring", fmt.Sprintf("%d (org %s)", len(kr.GetCommandKeys()), kr.GetOrgId()))
	}
	return r.Each([]byte(prefixBatch), false, func(k, v []byte) (bool, error) {
		var m pb.SeqMark
		if err := proto.Unmarshal(v, &m); err != nil {
			return false, fmt.Errorf("decode %s: %w", k, err)
		}
		s.Add(strings.TrimPrefix(string(k), prefixBatch)+" batch seqs reserved up to", m.GetSeq())
		return true, nil
	})
}
