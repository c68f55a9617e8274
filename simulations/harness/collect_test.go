package harness

import "testing"

// TestTokenOf: the command token comes only from a pool URL of the chaos domain; anything else (another
// pool, a hostile parameter) carries none.
func TestTokenOf(t *testing.T) {
	for in, want := range map[string]string{
		"stratum+tcp://c1a2b3-17.chaos.invalid:3333,chaos,x": "c1a2b3-17",
		"stratum+tcp://x9-2.chaos.invalid:3333":              "x9-2",
		"stratum+tcp://pool.example:3333,u,p":                "",
		"":                                                   "",
		"1":                                                  "",
		".chaos.invalid":                                     "",
	} {
		if got := tokenOf(in); got != want {
			t.Errorf("tokenOf(%q) = %q, want %q", in, got, want)
		}
	}
	if ipOf("127.0.0.11:4028") != "127.0.0.11" || ipOf("garbage") != "garbage" {
		t.Fatal("ipOf")
	}
}
