package spool

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/hashfleet/hashfleet/actors/badgerkv/inspect"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/node/telemetry"
	"google.golang.org/protobuf/proto"
)

// Schema describes the spool's keys (keys.go) to the store inspector.
func Schema() inspect.Schema {
	batch := func(r []byte) bool { return len(r) == 9 && (r[8] == variantRaw || r[8] == variantAggregated) }
	return inspect.Schema{
		Kind: "spool",
		Doc:  "fleet node offline spool: telemetry and event batches held until the cloud acks them",
		Prefixes: []inspect.Prefix{
			{Name: "info", Prefix: keyInfo, Exact: true, Type: "JSON", Decode: inspect.JSONStruct},
			{Name: "telemetry", Prefix: prefixTelemetry, Message: &pb.TelemetryBatch{}, Match: batch,
				FormatKey: formatBatchKey, ParseKey: parseBatchKey},
			{Name: "events", Prefix: prefixEvents, Message: &pb.EventBatch{}, Match: batch,
				FormatKey: formatBatchKey, ParseKey: parseBatchKey},
			{Name: "meta", Prefix: prefixMeta, Type: "batch meta (binary)",
				Match:     func(r []byte) bool { return len(r) == 9 && (r[0] == 't' || r[0] == 'e') },
				FormatKey: formatMetaKey, ParseKey: parseMetaKeyText,
				Decode: func(_, v []byte) (proto.Message, error) {
					f, err := MetaFields(v)
					if err != nil {
						return nil, err
					}
					return inspect.Struct(f)
				}},
			{Name: "intent", Prefix: keyIntent, Exact: true, Type: "downsample intent (binary)",
				Decode: func(_, v []byte) (proto.Message, error) {
					in, err := decodeIntent(v)
					if err != nil {
						return nil, err
					}
					targets := make([]any, len(in.targets))
					for i, t := range in.targets {
						targets[i] = float64(t)
					}
					return inspect.Struct(map[string]any{"kind": in.kind.String(), "aggregated_seqs": targets})
				}},
		},
		Summarize: summarize,
	}
}

// formatBatchKey renders <seq BE8><variant> as "<seq>" (raw) or "<seq>/agg".
func formatBatchKey(rest []byte) string {
	if len(rest) != 9 {
		return inspect.Printable(rest)
	}
	s := strconv.FormatUint(binary.BigEndian.Uint64(rest), 10)
	if rest[8] == variantAggregated {
		s += "/agg"
	}
	return s
}

func parseBatchKey(rest string) ([]byte, error) {
	num, agg := strings.CutSuffix(rest, "/agg")
	seq, err := strconv.ParseUint(num, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("want <seq> or <seq>/agg after the prefix, got %q", rest)
	}
	v := variantRaw
	if agg {
		v = variantAggregated
	}
	return append(binary.BigEndian.AppendUint64(nil, seq), v), nil
}

// formatMetaKey renders <kind><seq BE8> as "t/<seq>" or "e/<seq>".
func formatMetaKey(rest []byte) string {
	if len(rest) != 9 {
		return inspect.Printable(rest)
	}
	return string(rest[0]) + "/" + strconv.FormatUint(binary.BigEndian.Uint64(rest[1:]), 10)
}

func parseMetaKeyText(rest string) ([]byte, error) {
	k, num, ok := strings.Cut(rest, "/")
	seq, err := strconv.ParseUint(num, 10, 64)
	if !ok || err != nil || (k != "t" && k != "e") {
		return nil, fmt.Errorf("want t/<seq> or e/<seq> after the prefix, got %q", rest)
	}
	return binary.BigEndian.AppendUint64([]byte(k), seq), nil
}

func summarize(r *inspect.Reader, s *inspect.Summary) error {
	var depth, items int64
	var per [numKinds]KindStats
	oldest := int64(math.MaxInt64)
	err := r.Each([]byte(prefixMeta), false, func(k, v []byte) (bool, error) {
		kind, _, err := parseMetaKey(k)
		if err != nil {
			return false, err
		}
		m, err := decodeMeta(v)
		if err != nil {
			return false, fmt.Errorf("%s: %w", inspect.Printable(k), err)
		}
		depth++
		items += int64(m.items)
		oldest = min(oldest, m.at)
		ks := &per[kind]
		ks.Batches++
		ks.Items += m.items
		ks.Protected += m.protected
		ks.Bytes += entrySize(kind, m)
		if m.variant == variantAggregated {
			ks.Aggregated++
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	s.SpoolDepth, s.SpoolItems = &depth, &items
	if depth > 0 {
		age := max(0, r.Now().Sub(time.UnixMilli(oldest)).Seconds())
		s.OldestEntryAge = &age
		s.Add("oldest entry appended", time.UnixMilli(oldest).UTC().Format(time.RFC3339))
	}
	t, e := per[telemetry.KindTelemetry], per[telemetry.KindEvents]
	s.Add("telemetry", fmt.Sprintf("%d batches, %d samples (%d batches of minute aggregates), %s", t.Batches, t.Items, t.Aggregated, inspect.HumanBytes(t.Bytes)))
	s.Add("events", fmt.Sprintf("%d batches, %d events (%d command audit / local command, never dropped), %s", e.Batches, e.Items, e.Protected, inspect.HumanBytes(e.Bytes)))
	if v, found, err := r.Get([]byte(keyIntent)); err != nil {
		return err
	} else if found {
		in, err := decodeIntent(v)
		if err != nil {
			return err
		}
		s.Add("interrupted downsample step", fmt.Sprintf("%d aggregated batches not committed; the next open rolls them back", len(in.targets)))
	}
	return nil
}

// Inspect runs fn with an inspector over one consistent snapshot of the live spool (the running node's admin
// endpoint serves `store inspect`'s views from it while Badger's lock keeps the CLI out). It reads Badger
// only, never the spool's lock, so appends and acks go on meanwhile. now is the time ages are computed
// against (nil: the spool's clock).
func (s *Spool) Inspect(now func() time.Time, fn func(*inspect.Inspector) error) error {
	s.views.RLock()
	defer s.views.RUnlock()
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return ErrClosed
	}
	cfg := inspect.DefaultConfig(s.cfg.Dir, Schema())
	cfg.Kind = Schema().Kind
	if cfg.Dir == "" {
		cfg.Dir = "(in memory)"
	}
	cfg.Now = s.clk.Now
	if now != nil {
		cfg.Now = now
	}
	return inspect.View(s.db, cfg, fn)
}
