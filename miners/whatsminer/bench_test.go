package whatsminer

import (
	"encoding/json"
	"testing"

	"github.com/hashfleet/hashfleet/miners/whatsminer/wmapi"
)

var benchSummaryV2 = []byte(`{"STATUS":[{"STATUS":"S","When":1764331200,"Code":11,"Msg":"Summary","Description":"btminer"}],"SUMMARY":[{"Elapsed":86400,"MHS av":126002000.5,"MHS 5s":125880000.25,"MHS 1m":125900000,"MHS 5m":126000000,"MHS 15m":126010000,"HS RT":125880000,"Accepted":41234,"Rejected":12,"Total MH":1.0886e13,"Temperature":71.5,"freq_avg":590,"Fan Speed In":5100,"Fan Speed Out":5160,"Power":3276,"Power Rate":26.0,"Pool Rejected%":0.03,"Pool Stale%":0,"Uptime":86400,"Hash Stable":true,"Target Freq":590,"Target MHS":126000000,"Env Temp":25.5,"Power Mode":"Normal","Factory GHS":126000,"Power Limit":3600,"Chip Temp Min":60.1,"Chip Temp Max":80.2,"Chip Temp Avg":72.3,"MAC":"C4:11:00:12:34:56","Firmware Version":"'20240501.22.REL'"}],"id":1}`)

var benchStatusV3 = []byte(`{"code":0,"when":1764331200,"msg":{"summary":{"elapsed":86400,"hash-realtime":125.88,"hash-average":126.0,"power-realtime":3276,"power-limit":3600,"fan-speed-in":5100,"fan-speed-out":5160,"power-mode":"Normal","chip-temp-avg":72.3,"board-temperature":[61,62,60]}},"desc":"get.miner.status"}`)

// BenchmarkParseSummaryV2 is the v2 poll's main parse: a btminer summary reply into the reading.
func BenchmarkParseSummaryV2(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchSummaryV2)))
	for b.Loop() {
		var r v2Reply
		if err := decode("summary", benchSummaryV2, &r); err != nil {
			b.Fatal(err)
		}
		if err := r.check("summary"); err != nil || len(r.Summary) != 1 {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/reply")
}

// BenchmarkParseSummaryV3 is the same for a v3 get.miner.status summary frame.
func BenchmarkParseSummaryV3(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchStatusV3)))
	for b.Loop() {
		var r v3Reply
		if err := decode("summary", benchStatusV3, &r); err != nil {
			b.Fatal(err)
		}
		var s struct {
			Summary *v3Summary `json:"summary"`
		}
		if err := json.Unmarshal(r.Msg, &s); err != nil || s.Summary == nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/reply")
}

// BenchmarkOpenEnvelope is decrypting a write's AES-256-ECB reply envelope.
func BenchmarkOpenEnvelope(b *testing.B) {
	var key [32]byte
	sealed := wmapi.Seal(key, []byte(`{"STATUS":"S","When":1764331200,"Code":131,"Msg":"","Description":""}`))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := wmapi.Open(key, sealed); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDeriveToken is the v2 token derivation (two MD5-crypts and a SHA-256), once per get_token.
func BenchmarkDeriveToken(b *testing.B) {
	for b.Loop() {
		_ = wmapi.DeriveV2("admin", "BQ5hoXV9", "jbzkfQls", "1764331200")
	}
}
