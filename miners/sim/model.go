package sim

import (
	"fmt"
	"math"
	"time"
)

// model is one simulated hardware type, with nominal stock-firmware figures.
type model struct {
	name        string  // stats/version Type
	id          string  // stats ID
	nominalTHs  float64 // at stock frequency
	powerW      float64 // at nominal hashrate
	boards      int
	chips       int // per board
	fans        int
	compileTime string
}

var models = [...]model{
	{"Antminer S19", "BC50", 95, 3250, 3, 76, 4, "Thu Apr 22 16:14:12 CST 2021"},
	{"Antminer S19j Pro", "BC50", 104, 3068, 3, 126, 4, "Mon Nov 29 15:11:22 CST 2021"},
	{"Antminer S19 XP", "BHB42", 140, 3010, 3, 110, 4, "Fri Jul 29 11:57:05 CST 2022"},
	{"Antminer S21", "BHB68", 200, 3500, 3, 108, 4, "Tue Dec 19 16:04:36 CST 2023"},
}

const (
	maxBoards = 4
	maxFans   = 4
	// noiseWindow is how long the 5 s hashrate and sensor readings stay put.
	noiseWindow = 5 * time.Second
	// sharesPerTHs is the accepted-share rate per TH/s per second on the active pool.
	sharesPerTHs = 0.002
	rejectRatio  = 0.002
	bmminerVer   = "4.11.1"
	bosminerVer  = "bosminer-plus-tuner 0.9.0-4e2ff1b2"
	minerVer     = "uart_trans.1.3"
)

// splitmix64 is a small, good 64-bit mixer: the simulator's only source of variation.
func splitmix64(x uint64) uint64 {
	x += 0x9E3779B97F4A7C15
	x = (x ^ x>>30) * 0xBF58476D1CE4E5B9
	x = (x ^ x>>27) * 0x94D049BB133111EB
	return x ^ x>>31
}

// noise returns a deterministic value in [-1, 1) for (seed, window, channel).
func noise(seed uint64, window int64, channel uint64) float64 {
	x := splitmix64(seed ^ splitmix64(uint64(window)) ^ splitmix64(channel<<32|0xA5A5))
	return float64(x>>11)/(1<<52) - 1
}

// identity is what a miner is, derived from the fleet seed and its index.
type identity struct {
	seed    uint64
	model   model
	serial  string
	mac     string
	nominal float64 // this unit's TH/s: the model's ±2%
}

func newIdentity(fleetSeed int64, index int) identity {
	seed := splitmix64(uint64(fleetSeed) ^ splitmix64(uint64(index)+1))
	m := models[splitmix64(seed^1)%uint64(len(models))]
	const alnum = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"
	serial := []byte("HF")
	for i, x := 0, splitmix64(seed^2); i < 14; i++ {
		serial = append(serial, alnum[x%uint64(len(alnum))])
		x /= uint64(len(alnum))
		if x == 0 {
			x = splitmix64(seed ^ uint64(i) ^ 3)
		}
	}
	mac := splitmix64(seed ^ 4)
	return identity{
		seed:   seed,
		model:  m,
		serial: string(serial),
		// 02: locally administered, unicast.
		mac:     fmt.Sprintf("02:%02x:%02x:%02x:%02x:%02x", byte(mac>>32), byte(mac>>24), byte(mac>>16), byte(mac>>8), byte(mac)),
		nominal: m.nominalTHs * (1 + 0.02*noise(seed, 0, 5)),
	}
}

func round2(v float64) float64 { return math.Round(v*100) / 100 }
