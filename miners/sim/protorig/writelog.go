package protorig

import (
	"time"

	"github.com/hashfleet/hashfleet/miners/sim/internal/httpsim"
)

// WriteRecord is one write a rig received, accepted or not.
type WriteRecord struct {
	MinerID string
	At      time.Time // on Config.Clock
	Method  string
	Path    string
	// Params are the query parameters and the JSON body flattened to dotted keys ("0.url", "power_target_watts");
	// values of keys containing "password" or "pass" are replaced by "***".
	Params map[string]string
	Remote string // the caller's host:port
	// Principal is who the rig took the caller to be: "password", "jwt:<iss>", "pairing", or "" when
	// authentication failed.
	Principal string
	Status    int  // HTTP status answered
	Accepted  bool // Status is 2xx
}

// records turns the rigs' write logs into WriteRecords.
func records(ws []httpsim.Write) []WriteRecord {
	var out []WriteRecord
	for _, w := range ws {
		out = append(out, WriteRecord{
			MinerID: w.MinerID, At: w.At, Method: w.Method, Path: w.Path, Params: w.Params, Remote: w.Remote,
			Principal: w.Principal, Status: w.Status, Accepted: w.Status >= 200 && w.Status < 300,
		})
	}
	return out
}
