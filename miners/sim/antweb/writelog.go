package antweb

import (
	"time"

	"github.com/hashfleet/hashfleet/miners/sim/internal/httpsim"
)

// WriteRecord is one write CGI call a miner received, accepted or not.
type WriteRecord struct {
	MinerID string
	At      time.Time // on Config.Clock
	Method  string
	Path    string
	// Params are the query and the body (JSON flattened to dotted keys, "pools.0.url"; or form fields);
	// values of keys containing "pass" are replaced by "***".
	Params map[string]string
	Remote string // the caller's host:port
	// User is the digest username that authenticated, "" when authentication failed (AuthFailure says why).
	User        string
	AuthFailure string
	Status      int
	// Accepted: authenticated, 2xx and not {"stats":"error"}.
	Accepted bool
}

// records turns the web side's write log into WriteRecords.
func records(ws []httpsim.Write) []WriteRecord {
	var out []WriteRecord
	for _, w := range ws {
		out = append(out, WriteRecord{
			MinerID: w.MinerID, At: w.At, Method: w.Method, Path: w.Path, Params: w.Params, Remote: w.Remote,
			User: w.Principal, AuthFailure: w.AuthFailure, Status: w.Status,
			Accepted: w.Principal != "" && !w.Refused && w.Status >= 200 && w.Status < 300,
		})
	}
	return out
}
