package spool

import (
	"encoding/binary"
	"encoding/json"
	"fmt"

	"github.com/hashfleet/hashfleet/node/telemetry"
)

// Key layout (all keys start with "spool/", so the spool can share a Badger directory without colliding):
//
//	spool/info                      JSON {format, created_at_unix_ms}        written once at first open
//	spool/t/<seq BE8><variant>      pb.TelemetryBatch                        a telemetry batch
//	spool/e/<seq BE8><variant>      pb.EventBatch                            an event batch
//	spool/m/<kind><seq BE8>         meta (binary, see encodeMeta)            one per batch, same txn as the data
//	spool/intent                    intent (binary, see encodeIntent)        only while a downsample step runs
//
// variant is 'r' (raw, as the batcher made it) or 'a' (per-miner minute aggregates made by downsampling).
// kind is 't' or 'e'. Big-endian seqs make a prefix scan return batches in seq order.
const (
	keyInfo         = "spool/info"
	keyIntent       = "spool/intent"
	prefixTelemetry = "spool/t/"
	prefixEvents    = "spool/e/"
	prefixMeta      = "spool/m/"

	variantRaw        byte = 'r'
	variantAggregated byte = 'a'

	formatVersion = 1
	numKinds      = 2
)

func kindChar(k telemetry.Kind) byte {
	if k == telemetry.KindEvents {
		return 'e'
	}
	return 't'
}

func dataPrefix(k telemetry.Kind) string {
	if k == telemetry.KindEvents {
		return prefixEvents
	}
	return prefixTelemetry
}

func dataKey(k telemetry.Kind, seq uint64, variant byte) []byte {
	p := dataPrefix(k)
	key := make([]byte, 0, len(p)+9)
	key = append(key, p...)
	key = binary.BigEndian.AppendUint64(key, seq)
	return append(key, variant)
}

func metaKey(k telemetry.Kind, seq uint64) []byte {
	key := make([]byte, 0, len(prefixMeta)+9)
	key = append(key, prefixMeta...)
	key = append(key, kindChar(k))
	return binary.BigEndian.AppendUint64(key, seq)
}

// parseMetaKey returns the kind and seq of a meta key.
func parseMetaKey(key []byte) (telemetry.Kind, uint64, error) {
	if len(key) != len(prefixMeta)+9 || string(key[:len(prefixMeta)]) != prefixMeta {
		return 0, 0, fmt.Errorf("meta key %q: %w", key, ErrCorrupt)
	}
	seq := binary.BigEndian.Uint64(key[len(prefixMeta)+1:])
	switch key[len(prefixMeta)] {
	case 't':
		return telemetry.KindTelemetry, seq, nil
	case 'e':
		return telemetry.KindEvents, seq, nil
	}
	return 0, 0, fmt.Errorf("meta key %q has kind %q: %w", key, key[len(prefixMeta)], ErrCorrupt)
}

// meta is what the index needs about a batch without reading it. It is stored next to the batch so Open
// scans the small meta range rather than every batch.
type meta struct {
	variant   byte
	items     int   // samples or events
	protected int   // events never dropped (command audit, local command)
	valueLen  int   // bytes of the stored batch
	at        int64 // when the batch entered the spool (unix ms, spool clock)
	maxObs    int64 // telemetry: newest observed_at in the batch (unix ms)
}

func encodeMeta(m meta) []byte {
	b := make([]byte, 0, 2+5*binary.MaxVarintLen64)
	b = append(b, formatVersion, m.variant)
	b = binary.AppendUvarint(b, uint64(m.items))
	b = binary.AppendUvarint(b, uint64(m.protected))
	b = binary.AppendUvarint(b, uint64(m.valueLen))
	b = binary.AppendVarint(b, m.at)
	return binary.AppendVarint(b, m.maxObs)
}

func decodeMeta(b []byte) (meta, error) {
	if len(b) < 2 || b[0] != formatVersion {
		return meta{}, fmt.Errorf("meta of %d bytes, format %v: %w", len(b), firstByte(b), ErrCorrupt)
	}
	m := meta{variant: b[1]}
	if m.variant != variantRaw && m.variant != variantAggregated {
		return meta{}, fmt.Errorf("meta variant %q: %w", m.variant, ErrCorrupt)
	}
	r := b[2:]
	var u [3]uint64
	for i := range u {
		v, n := binary.Uvarint(r)
		if n <= 0 {
			return meta{}, fmt.Errorf("meta field %d: %w", i, ErrCorrupt)
		}
		u[i], r = v, r[n:]
	}
	var s [2]int64
	for i := range s {
		v, n := binary.Varint(r)
		if n <= 0 {
			return meta{}, fmt.Errorf("meta field %d: %w", i+3, ErrCorrupt)
		}
		s[i], r = v, r[n:]
	}
	m.items, m.protected, m.valueLen, m.at, m.maxObs = int(u[0]), int(u[1]), int(u[2]), s[0], s[1]
	return m, nil
}

func firstByte(b []byte) any {
	if len(b) == 0 {
		return "none"
	}
	return b[0]
}

// MetaFields decodes a stored meta value into named fields (the store inspector shows them as JSON).
func MetaFields(value []byte) (map[string]any, error) {
	m, err := decodeMeta(value)
	if err != nil {
		return nil, err
	}
	variant := "raw"
	if m.variant == variantAggregated {
		variant = "minute-aggregates"
	}
	return map[string]any{
		"variant": variant, "items": m.items, "protected": m.protected, "value_bytes": m.valueLen,
		"appended_at_unix_ms": m.at, "newest_observed_at_unix_ms": m.maxObs,
	}, nil
}

// intent names the aggregated batches a downsample step is writing before it commits. Open deletes them when
// the intent is still there (the step did not commit), so a crash mid-step leaves the raw batches as they were.
type intent struct {
	kind    telemetry.Kind
	targets []uint64
}

func encodeIntent(in intent) []byte {
	b := []byte{formatVersion, kindChar(in.kind)}
	b = binary.AppendUvarint(b, uint64(len(in.targets)))
	for _, s := range in.targets {
		b = binary.AppendUvarint(b, s)
	}
	return b
}

func decodeIntent(b []byte) (intent, error) {
	if len(b) < 3 || b[0] != formatVersion || (b[1] != 't' && b[1] != 'e') {
		return intent{}, fmt.Errorf("downsample intent of %d bytes: %w", len(b), ErrCorrupt)
	}
	in := intent{kind: telemetry.KindTelemetry}
	if b[1] == 'e' {
		in.kind = telemetry.KindEvents
	}
	r := b[2:]
	n, w := binary.Uvarint(r)
	if w <= 0 || n > uint64(len(r)) {
		return intent{}, fmt.Errorf("downsample intent count: %w", ErrCorrupt)
	}
	r = r[w:]
	for range n {
		s, w := binary.Uvarint(r)
		if w <= 0 {
			return intent{}, fmt.Errorf("downsample intent seq: %w", ErrCorrupt)
		}
		in.targets = append(in.targets, s)
		r = r[w:]
	}
	return in, nil
}

// info is the spool's identity record.
type info struct {
	Store           string `json:"store"`
	Format          int    `json:"format"`
	CreatedAtUnixMs int64  `json:"created_at_unix_ms"`
}

const storeName = "hashfleet-node-spool"

func encodeInfo(at int64) []byte {
	b, _ := json.Marshal(info{Store: storeName, Format: formatVersion, CreatedAtUnixMs: at})
	return b
}
