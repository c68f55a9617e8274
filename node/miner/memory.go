package miner

import "github.com/hashfleet/hashfleet/messages/pb"

// memory remembers final command results by idempotency key, oldest evicted first. It belongs to the
// miner's slot in the site, not to one incarnation, so a restart does not forget which commands already ran.
// Only the live incarnation touches it (protoactor runs one message at a time per actor), never a goroutine.
type memory struct {
	max     int
	results map[string]*pb.MinerResult
	order   []string
}

// newMemory returns an empty memory; its map is made by the first put, since most miners never run a command.
func newMemory(max int) *memory {
	return &memory{max: max}
}

func (m *memory) get(key string) (*pb.MinerResult, bool) {
	r, ok := m.results[key]
	return r, ok
}

func (m *memory) put(key string, r *pb.MinerResult) {
	if _, ok := m.results[key]; ok {
		m.results[key] = r
		return
	}
	if m.results == nil {
		m.results = make(map[string]*pb.MinerResult)
	}
	if len(m.order) >= m.max {
		delete(m.results, m.order[0])
		m.order = m.order[1:]
	}
	m.results[key] = r
	m.order = append(m.order, key)
}
