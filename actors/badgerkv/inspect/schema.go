package inspect

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

// Schema describes one kind of store to the inspector: its key prefixes, how to decode each prefix's values,
// and what its summary shows. Each store package declares its own (node/store, node/spool, server/store).
type Schema struct {
	// Kind names the store ("node", "spool", "server").
	Kind string
	// Doc is one line on what the store holds.
	Doc string
	// Prefixes are the store's key prefixes. A key belongs to the longest prefix that matches it.
	Prefixes []Prefix
	// Summarize adds the store's own facts to a summary (seq high-water mark, spool depth, ...). Optional.
	Summarize func(r *Reader, s *Summary) error
}

// Prefix is one family of keys.
type Prefix struct {
	// Name is how an operator refers to the prefix ("audit"); `scan NAME` scans it.
	Name string
	// Prefix is the key prefix; with Exact, the whole key.
	Prefix string
	Exact  bool
	// Message is the protobuf type of the values; Decode defaults to unmarshalling into a new one.
	Message proto.Message
	// Decode turns a value into a message for protojson, overriding Message. A nil message with a nil error
	// means the value is empty by design (an index entry).
	Decode func(key, value []byte) (proto.Message, error)
	// Type names the value type in the prefixes view; defaults to Message's full name.
	Type string
	// Match reports whether the rest of a key (after Prefix) has this prefix's shape (for example 8 bytes of a
	// big-endian seq); nil accepts any rest.
	Match func(rest []byte) bool
	// FormatKey renders the rest of a key; nil renders printable text as is and anything else as hex.
	FormatKey func(rest []byte) string
	// ParseKey turns what an operator typed after Prefix into key bytes (inverse of FormatKey); nil takes
	// the text as is.
	ParseKey func(rest string) ([]byte, error)
	// Audit marks the prefix holding the audit log, in time order (the `audit` view).
	Audit bool
}

func (p *Prefix) matches(key []byte) bool {
	if p.Exact {
		return string(key) == p.Prefix
	}
	if len(key) < len(p.Prefix) || string(key[:len(p.Prefix)]) != p.Prefix {
		return false
	}
	return p.Match == nil || p.Match(key[len(p.Prefix):])
}

func (p *Prefix) typeName() string {
	switch {
	case p.Type != "":
		return p.Type
	case p.Message != nil:
		return string(proto.MessageName(p.Message))
	}
	return "bytes"
}

func (p *Prefix) decode(key, value []byte) (proto.Message, error) {
	if p.Decode != nil {
		return p.Decode(key, value)
	}
	if p.Message == nil {
		return nil, nil
	}
	m := p.Message.ProtoReflect().New().Interface()
	if err := proto.Unmarshal(value, m); err != nil {
		return nil, err
	}
	return m, nil
}

func (p *Prefix) formatKey(key []byte) string {
	if p.Exact {
		return p.Prefix
	}
	rest := key[len(p.Prefix):]
	if p.FormatKey != nil {
		return p.Prefix + p.FormatKey(rest)
	}
	return p.Prefix + Printable(rest)
}

// match returns the longest prefix of s that matches key, or nil.
func (s *Schema) match(key []byte) *Prefix {
	if i := s.matchIndex(key); i >= 0 {
		return &s.Prefixes[i]
	}
	return nil
}

// matchIndex returns the index of the longest prefix that matches key, or -1.
func (s *Schema) matchIndex(key []byte) int {
	best := -1
	for i := range s.Prefixes {
		p := &s.Prefixes[i]
		if p.matches(key) && (best < 0 || len(p.Prefix) > len(s.Prefixes[best].Prefix)) {
			best = i
		}
	}
	return best
}

// Printable renders key bytes as text when they are printable UTF-8, else as "0x" + hex.
func Printable(b []byte) string {
	if utf8.Valid(b) && !strings.ContainsFunc(string(b), func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return string(b)
	}
	return fmt.Sprintf("0x%x", b)
}

// Uint64Key is a Match for a key rest that is one big-endian uint64.
func Uint64Key(rest []byte) bool { return len(rest) == 8 }

// FormatUint64 renders a big-endian uint64 key rest as decimal.
func FormatUint64(rest []byte) string {
	if len(rest) != 8 {
		return Printable(rest)
	}
	return strconv.FormatUint(binary.BigEndian.Uint64(rest), 10)
}

// ParseUint64 turns a decimal into a big-endian uint64 key rest.
func ParseUint64(rest string) ([]byte, error) {
	n, err := strconv.ParseUint(rest, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("want a decimal number after the prefix, got %q", rest)
	}
	return binary.BigEndian.AppendUint64(nil, n), nil
}

// JSONStruct decodes a JSON object value into a structpb.Struct, for stores that keep small records as JSON.
func JSONStruct(_, value []byte) (proto.Message, error) {
	var m map[string]any
	if err := json.Unmarshal(value, &m); err != nil {
		return nil, err
	}
	return structpb.NewStruct(m)
}

// Struct wraps fields computed from a non-protobuf value (a binary record) for protojson.
func Struct(fields map[string]any) (proto.Message, error) { return structpb.NewStruct(fields) }
