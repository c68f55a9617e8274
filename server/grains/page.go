package grains

import (
	"slices"
	"strings"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
)

// viewRow is one miner in the read model. Telemetry and device are replaced, never mutated.
type viewRow struct {
	id, node  string
	device    *pb.Device
	tel       *pb.Telemetry
	state     pb.MinerState
	stateAtMs int64
	lastSeen  time.Time
	desired   Desired
	haystack  string // lower-cased search text
}

func (r *viewRow) reindex() {
	var b strings.Builder
	for _, s := range []string{r.id, r.node, r.device.GetModel(), r.device.GetAddress(), r.device.GetSerial(),
		r.device.GetMac(), r.tel.GetModel(), r.tel.GetFirmware(), r.tel.GetSerial(), r.tel.GetMac()} {
		b.WriteString(strings.ToLower(s))
		b.WriteByte(0)
	}
	for _, p := range r.tel.GetPools() {
		b.WriteString(strings.ToLower(p.GetUrl()))
		b.WriteByte(0)
	}
	r.haystack = b.String()
}

// searchTextChanged reports whether a row's search text would change when its sample prev is replaced by
// next: reindex reads only these fields of the sample.
func searchTextChanged(prev, next *pb.Telemetry) bool {
	if prev == nil || prev.GetModel() != next.GetModel() || prev.GetFirmware() != next.GetFirmware() ||
		prev.GetSerial() != next.GetSerial() || prev.GetMac() != next.GetMac() || len(prev.GetPools()) != len(next.GetPools()) {
		return true
	}
	for i, p := range prev.GetPools() {
		if p.GetUrl() != next.GetPools()[i].GetUrl() {
			return true
		}
	}
	return false
}

// isStale: the node's control stream is down, the miner was never seen, or its latest sample is older than
// staleAfter.
func isStale(lastSeen time.Time, nodeConnected bool, now time.Time, staleAfter time.Duration) bool {
	return !nodeConnected || lastSeen.IsZero() || now.Sub(lastSeen) > staleAfter
}

// lastSeenOf is when a sample was observed, never later than when it was received (a node clock ahead of
// ours must not make a miner look fresh).
func lastSeenOf(s *pb.Telemetry, receivedAt time.Time) time.Time {
	if ms := s.GetObservedAtUnixMs(); ms > 0 {
		if at := time.UnixMilli(ms); at.Before(receivedAt) {
			return at
		}
	}
	return receivedAt
}

// buildPage answers q over rows (ids sorted) as of now.
func buildPage(rows map[string]*viewRow, ids []string, connected func(node string) bool, q MinerQuery,
	now time.Time, staleAfter time.Duration) MinerPage {
	limit := q.Limit
	switch {
	case limit <= 0:
		limit = DefaultPageLimit
	case limit > MaxPageLimit:
		limit = MaxPageLimit
	}
	offset := max(q.Offset, 0)
	search := strings.ToLower(strings.TrimSpace(q.Search))
	page := MinerPage{Offset: offset, Limit: limit, Counts: map[string]int{}, AsOf: now,
		Items: make([]MinerRow, 0, min(limit, max(len(ids)-offset, 0)))}
	for _, id := range ids {
		r := rows[id]
		stale := isStale(r.lastSeen, connected(r.node), now, staleAfter)
		page.Counts[StateName(r.state)]++
		if stale {
			page.Counts["stale"]++
		}
		if (q.Stale && !stale) || (len(q.States) > 0 && !slices.Contains(q.States, r.state)) ||
			(search != "" && !strings.Contains(r.haystack, search)) {
			continue
		}
		if page.Total >= offset && len(page.Items) < limit {
			page.Items = append(page.Items, r.row(stale))
		}
		page.Total++
	}
	return page
}

func (r *viewRow) row(stale bool) MinerRow {
	return MinerRow{ID: r.id, Node: r.node, State: r.state, Stale: stale, LastSeen: r.lastSeen,
		Telemetry: r.tel, Device: r.device, Desired: r.desired}
}
