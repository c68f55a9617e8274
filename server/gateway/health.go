package gateway

// Draining reports whether the gateway refuses new streams because Drain was called (the server is stopping
// or handing its nodes to another member).
func (g *Gateway) Draining() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.draining
}
