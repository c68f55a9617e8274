package spool

import "github.com/hashfleet/hashfleet/node/telemetry"

type cacheKey struct {
	kind telemetry.Kind
	seq  uint64
}

type cached struct {
	b       telemetry.Batch
	variant byte
	size    int64
}

// batchCache keeps the most recently appended batches decoded, first in first out, bounded by their encoded
// size. Online, the batcher's Next follows its Append at once and finds the batch here.
type batchCache struct {
	max   int64
	size  int64
	m     map[cacheKey]cached
	order []cacheKey
}

func newBatchCache(max int64) batchCache { return batchCache{max: max, m: map[cacheKey]cached{}} }

func (c *batchCache) put(b telemetry.Batch, size int64) {
	if size > c.max {
		return
	}
	k := cacheKey{b.Kind, b.Seq}
	c.remove(b.Kind, b.Seq)
	c.m[k] = cached{b: b, variant: variantRaw, size: size}
	c.order = append(c.order, k)
	c.size += size
	for c.size > c.max && len(c.order) > 0 {
		old := c.order[0]
		c.order = c.order[1:]
		if e, ok := c.m[old]; ok {
			c.size -= e.size
			delete(c.m, old)
		}
	}
	if len(c.order) > 2*len(c.m)+64 {
		live := c.order[:0]
		for _, k := range c.order {
			if _, ok := c.m[k]; ok {
				live = append(live, k)
			}
		}
		c.order = live
	}
}

func (c *batchCache) get(kind telemetry.Kind, seq uint64, variant byte) (telemetry.Batch, bool) {
	e, ok := c.m[cacheKey{kind, seq}]
	if !ok || e.variant != variant {
		return telemetry.Batch{}, false
	}
	return e.b, true
}

func (c *batchCache) remove(kind telemetry.Kind, seq uint64) {
	k := cacheKey{kind, seq}
	if e, ok := c.m[k]; ok {
		c.size -= e.size
		delete(c.m, k)
	}
}
