package gate

import "sync/atomic"

// Ownership is the node's confirmed ownership map as a set that code outside the gate may read from any
// goroutine (the credential opener behind the driver factory). The gate publishes every change to it; a
// reader sees either the old set or the new one, whole.
type Ownership struct {
	set atomic.Pointer[map[string]struct{}]
}

// NewOwnership returns a set holding ids.
func NewOwnership(ids []string) *Ownership {
	o := &Ownership{}
	o.Replace(ids)
	return o
}

// Has reports whether id is owned. A nil Ownership owns nothing.
func (o *Ownership) Has(id string) bool {
	if o == nil {
		return false
	}
	_, ok := (*o.set.Load())[id]
	return ok
}

// Len is the number of owned devices.
func (o *Ownership) Len() int {
	if o == nil {
		return 0
	}
	return len(*o.set.Load())
}

// Replace makes ids the owned set.
func (o *Ownership) Replace(ids []string) {
	m := make(map[string]struct{}, len(ids))
	for _, id := range ids {
		m[id] = struct{}{}
	}
	o.set.Store(&m)
}
