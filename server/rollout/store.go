package rollout

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"google.golang.org/protobuf/encoding/protojson"
)

// Store persists rollouts, so a server that restarts mid-rollout resumes it where it was instead of leaving
// half a site on new firmware with nobody watching. *store.Badger implements it (server/store/rollouts.go).
type Store interface {
	// PutRollout replaces the record of rollout id.
	PutRollout(id string, record []byte) error
	// Rollouts returns every stored record.
	Rollouts() ([][]byte, error)
}

// record is what is persisted of a rollout: the status the API shows, what the runner needs to go on (the
// firmware, the gate's settle time), and each batch's hashrates read before its update, so a batch resumed
// after a restart is still judged against the miners' hashrates from before their update.
type record struct {
	Status   Status               `json:"status"`
	Firmware json.RawMessage      `json:"firmware"` // protojson pb.ArtifactRef
	SettleNs int64                `json:"settle_ns"`
	Pre      []map[string]float64 `json:"pre"` // by batch index; nil until the batch reads them
}

func encodeRecord(st *Status, req Request, pre []map[string]float64) ([]byte, error) {
	fw, err := protojson.Marshal(req.Firmware)
	if err != nil {
		return nil, fmt.Errorf("rollout %s: encode firmware: %w", st.ID, err)
	}
	return json.Marshal(record{Status: *st, Firmware: fw, SettleNs: int64(req.Settle), Pre: pre})
}

// decodeRecord reads a stored record back into the status, the request and the pre-update hashrates. A record
// that does not parse, or whose batches and pre-update readings disagree, is an error: the caller skips it
// (and says so) rather than resume a rollout it cannot judge.
func decodeRecord(b []byte) (*Status, Request, []map[string]float64, error) {
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, Request{}, nil, fmt.Errorf("decode rollout record: %w", err)
	}
	st := r.Status
	if st.ID == "" || len(st.Batches) == 0 || len(r.Pre) > len(st.Batches) {
		return nil, Request{}, nil, fmt.Errorf("decode rollout record %q: %d batches, %d pre-update readings", st.ID, len(st.Batches), len(r.Pre))
	}
	fw := &pb.ArtifactRef{}
	if err := protojson.Unmarshal(r.Firmware, fw); err != nil {
		return nil, Request{}, nil, fmt.Errorf("decode rollout %s firmware: %w", st.ID, err)
	}
	req := Request{Site: st.Site, Firmware: fw, BatchSize: st.BatchSize, MinHashrateRatio: st.MinHashrateRatio,
		Settle: time.Duration(r.SettleNs), Actor: st.Actor}
	pre := make([]map[string]float64, len(st.Batches))
	copy(pre, r.Pre)
	return &st, req, pre, nil
}
