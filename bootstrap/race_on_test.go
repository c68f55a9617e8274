//go:build race

package bootstrap

// raceEnabled: the race detector slows the server tenfold, so timing tests that measure the product (the
// 20,000-miner table) skip unless asked (HASHFLEET_UI_SCALE=1).
const raceEnabled = true
