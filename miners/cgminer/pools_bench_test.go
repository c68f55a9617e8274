package cgminer

import (
	"fmt"
	"strings"
	"testing"
)

// bmminerPools is a POOLS reply of three pools with every member bmminer sends (23 each), as the simulator
// and real S19 firmware write them.
func bmminerPools() string {
	var objs []string
	for i := range 3 {
		objs = append(objs, fmt.Sprintf(`{"POOL":%d,"URL":"stratum+tcp://pool%d.example.com:3333","Status":"Alive","Priority":%d,`+
			`"Quota":1,"Long Poll":"N","Getworks":%d,"Accepted":%d,"Rejected":%d,"Discarded":0,"Stale":0,"Get Failures":0,`+
			`"Remote Failures":0,"User":"site1.rig%d","Diff":"65.5K","Difficulty Accepted":%d,"Difficulty Rejected":%d,`+
			`"Last Share Difficulty":65536,"Has Stratum":true,"Stratum Active":%t,"Stratum URL":"pool%d.example.com",`+
			`"Has GBT":false,"Pool Rejected%%":0.06}`, i, i, i, 1000*(3-i), 10000*(3-i), 6*(3-i), i, 655360000*(3-i), 393216*(3-i), i == 0, i))
	}
	return poolsReply(strings.Join(objs, ","))
}

// BenchmarkReadPools reads a parsed three-pool POOLS section (23 members a pool) into pb.Pools: the member
// lookups of sample.pools, without parsing or the network.
func BenchmarkReadPools(b *testing.B) {
	var d doc
	if err := d.parse([]byte(bmminerPools())); err != nil {
		b.Fatal(err)
	}
	arr, err := d.section("pools", "pools")
	if err != nil {
		b.Fatal(err)
	}
	in := &interner{}
	b.ReportAllocs()
	cpu0 := processCPU()
	defer func() { b.ReportMetric(float64((processCPU()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op") }()
	for b.Loop() {
		s := sample{strings: in}
		if pools, ids := s.pools(&d, arr); len(pools) != 3 || ids[2] != 2 || !pools[0].Active || pools[1].User != "site1.rig1" {
			b.Fatalf("pools %v ids %v", pools, ids)
		}
	}
}
