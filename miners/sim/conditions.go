package sim

// conditions are environmental faults a test sets on a running miner: heat (a blocked intake, a failed fan)
// and degraded hashing (failing chips, a bad board). They change what the miner reports while it hashes.
type conditions struct {
	heatC      float64 // added to board (and so chip) temperatures
	rateFactor float64 // hashrate multiplier; 0 means 1
	firmware   string  // installed firmware version; "" means the model's stock build
}

func (c conditions) rate() float64 {
	if c.rateFactor <= 0 {
		return 1
	}
	return c.rateFactor
}

// SetHeat raises the miner's board and chip temperatures by c °C while it hashes (0 restores them).
func (m *Miner) SetHeat(c float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cond.heatC = c
}

// SetHashrateFactor scales the miner's hashrate while it hashes (0.5: half its nominal rate; 1 or 0
// restores it). The average since boot is unchanged, as firmware's is slow to follow.
func (m *Miner) SetHashrateFactor(f float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cond.rateFactor = f
}
