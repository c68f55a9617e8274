package hlc

import (
	"cmp"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
)

// Timestamp is the value part of an HLC timestamp, without the node id. The zero Timestamp is before every
// other.
type Timestamp struct {
	// WallMs is the largest physical time seen, in Unix milliseconds.
	WallMs int64
	// Logical orders events within one WallMs.
	Logical uint32
}

// Compare orders timestamps: -1 if t is before u, 0 if equal, +1 if after.
func (t Timestamp) Compare(u Timestamp) int {
	if c := cmp.Compare(t.WallMs, u.WallMs); c != 0 {
		return c
	}
	return cmp.Compare(t.Logical, u.Logical)
}

// String is "wall_ms.logical".
func (t Timestamp) String() string { return fmt.Sprintf("%d.%d", t.WallMs, t.Logical) }

// next is the smallest timestamp after t: logical+1, or the next millisecond when logical is exhausted.
func (t Timestamp) next() Timestamp {
	if t.Logical == math.MaxUint32 {
		return Timestamp{WallMs: t.WallMs + 1}
	}
	return Timestamp{WallMs: t.WallMs, Logical: t.Logical + 1}
}

// Tick is the timestamp of a local or send event at wall time wallMs, given the last timestamp issued. It is
// strictly after last, and its WallMs is max(last.WallMs, wallMs): the wall clock stepping back never makes it
// go backwards.
func Tick(last Timestamp, wallMs int64) Timestamp {
	if wallMs > last.WallMs {
		return Timestamp{WallMs: wallMs}
	}
	return last.next()
}

// Merge is the timestamp of receiving a message stamped remote at wall time wallMs, given the last timestamp
// issued. It is strictly after both last and remote.
func Merge(last, remote Timestamp, wallMs int64) Timestamp {
	maxTS := last
	if remote.Compare(maxTS) > 0 {
		maxTS = remote
	}
	if wallMs > maxTS.WallMs {
		return Timestamp{WallMs: wallMs}
	}
	return maxTS.next()
}

// FromPB reads the value part of p (nil reads as the zero Timestamp).
func FromPB(p *pb.HLC) Timestamp {
	return Timestamp{WallMs: p.GetWallMs(), Logical: p.GetLogical()}
}

// ToPB stamps t with nodeID.
func (t Timestamp) ToPB(nodeID string) *pb.HLC {
	return &pb.HLC{WallMs: t.WallMs, Logical: t.Logical, NodeId: nodeID}
}

// Compare totally orders pb timestamps: by wall_ms, then logical, then node_id. It returns -1 if a is before
// b, 0 if they are the same timestamp, +1 if a is after b. nil is before every non-nil timestamp.
func Compare(a, b *pb.HLC) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return -1
	case b == nil:
		return 1
	}
	if c := FromPB(a).Compare(FromPB(b)); c != 0 {
		return c
	}
	return strings.Compare(a.GetNodeId(), b.GetNodeId())
}

// Format renders a pb timestamp for people and logs: "2025-01-02T03:04:05.678Z+3@node-1".
func Format(p *pb.HLC) string {
	if p == nil {
		return "-"
	}
	wall := time.UnixMilli(p.GetWallMs()).UTC().Format("2006-01-02T15:04:05.000Z")
	return fmt.Sprintf("%s+%d@%s", wall, p.GetLogical(), p.GetNodeId())
}

// Config configures a Clock.
type Config struct {
	// NodeID is stamped on every timestamp this clock issues. Required.
	NodeID string
	// MaxOffset bounds how far ahead of the local wall clock a remote timestamp may be for Update to merge it.
	// A remote timestamp further ahead is refused with ErrRemoteAhead. Zero disables the check. Default 5m:
	// far above NTP-synchronised drift, far below "the cloud's clock says next year".
	MaxOffset time.Duration
}

// DefaultConfig returns the defaults for nodeID.
func DefaultConfig(nodeID string) Config {
	return Config{NodeID: nodeID, MaxOffset: 5 * time.Minute}
}

// Validate reports a Config an operator must fix.
func (c Config) Validate() error {
	switch {
	case c.NodeID == "":
		return fmt.Errorf("hlc: node id is empty: %w", ErrInvalidConfig)
	case c.MaxOffset < 0:
		return fmt.Errorf("hlc: max offset %s is negative (0 disables the check): %w", c.MaxOffset, ErrInvalidConfig)
	}
	return nil
}

// Clock issues HLC timestamps for one node. Safe for concurrent use.
type Clock struct {
	cfg  Config
	wall clock.Clock

	mu   sync.Mutex
	last Timestamp
}

// New returns a clock reading wall time from wall.
func New(cfg Config, wall clock.Clock) (*Clock, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if wall == nil {
		wall = clock.Real()
	}
	return &Clock{cfg: cfg, wall: wall}, nil
}

func (c *Clock) wallMs() int64 { return c.wall.Now().UnixMilli() }

// Now returns a new timestamp, strictly after every timestamp this clock issued or merged before.
func (c *Clock) Now() *pb.HLC {
	wall := c.wallMs()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.last = Tick(c.last, wall)
	return c.last.ToPB(c.cfg.NodeID)
}

// Update merges a timestamp received from a peer and returns the timestamp of the receipt, strictly after
// remote and after every timestamp issued before. A nil remote is a plain Now. A remote more than MaxOffset
// ahead of the local wall clock is not merged: Update returns ErrRemoteAhead (and a nil timestamp); the caller
// records it, and the clock is unchanged.
func (c *Clock) Update(remote *pb.HLC) (*pb.HLC, error) {
	if remote == nil {
		return c.Now(), nil
	}
	wall := c.wallMs()
	r := FromPB(remote)
	if c.cfg.MaxOffset > 0 && r.WallMs-wall > c.cfg.MaxOffset.Milliseconds() {
		return nil, fmt.Errorf("hlc: remote %s from %q is %s ahead of the local clock (max %s): %w",
			r, remote.GetNodeId(), time.Duration(r.WallMs-wall)*time.Millisecond, c.cfg.MaxOffset, ErrRemoteAhead)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.last = Merge(c.last, r, wall)
	return c.last.ToPB(c.cfg.NodeID), nil
}

// Restore raises the clock to at least p (the last timestamp persisted before a restart): every timestamp
// issued afterwards is after p, whatever the wall clock says. A p below the clock's current value changes
// nothing. No MaxOffset check: p is this node's own history.
func (c *Clock) Restore(p *pb.HLC) {
	t := FromPB(p)
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.Compare(c.last) > 0 {
		c.last = t
	}
}

// Last returns the last timestamp issued or merged (zero wall_ms before the first).
func (c *Clock) Last() *pb.HLC {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last.ToPB(c.cfg.NodeID)
}

// NodeID is the node id this clock stamps.
func (c *Clock) NodeID() string { return c.cfg.NodeID }
