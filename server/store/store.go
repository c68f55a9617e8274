package store

import (
	"fmt"
	"strings"

	"github.com/hashfleet/hashfleet/messages/pb"
)

// Stream kinds a dedup mark is kept for.
const (
	KindTelemetry = "telemetry"
	KindEvents    = "events"
)

// MaxIDLen bounds node, miner and command ids, which become key parts.
const MaxIDLen = 256

// Mark is the highest batch_seq applied for one node and stream kind.
type Mark struct {
	Node string
	Kind string // KindTelemetry or KindEvents
	Seq  uint64
}

// Batch is what one ingested telemetry or event batch changes, written together so the dedup mark is never
// ahead of the data it covers.
type Batch struct {
	// Devices to insert or replace (new registrations, changed addresses).
	Devices []*pb.Device
	// Telemetry replaces the latest sample of each miner named.
	Telemetry []*pb.Telemetry
	// TelemetryEncoded, when not nil, holds one entry per Telemetry sample: its protobuf encoding as a node
	// sent it, which a store may keep instead of encoding the sample again. A nil entry: encode the sample.
	TelemetryEncoded [][]byte
	// Pending are devices a node reported that no operator has paired yet (Device.node_id is the reporter).
	// Registering a device (Devices) removes its pending entry for its node.
	Pending []*pb.Device
	// Audit are a node's CommandGate audit records (AuditRecord.node_id is the node they came from).
	Audit []*pb.AuditRecord
	// Mark, when set, is written last.
	Mark *Mark
}

// Store is the cloud server's persistence seam. Implementations are safe for concurrent use; each actor only
// touches its own records.
type Store interface {
	// Devices returns every registered device.
	Devices() ([]*pb.Device, error)
	// LatestTelemetry returns the latest stored sample of every miner.
	LatestTelemetry() ([]*pb.Telemetry, error)
	// Marks returns every dedup mark.
	Marks() ([]Mark, error)
	// Apply writes a batch of devices, latest samples and a mark.
	Apply(b Batch) error

	// PutCommand writes an operator command record, its idempotency key and the active index (present while
	// FinishedAtUnixMs is zero).
	PutCommand(rec *pb.CommandRecord) error
	// Command reads one record; ErrNotFound when absent.
	Command(id string) (*pb.CommandRecord, error)
	// CommandByIdempotencyKey returns the record issued under key; ErrNotFound when none.
	CommandByIdempotencyKey(key string) (*pb.CommandRecord, error)
	// ActiveCommands returns the records without a final status.
	ActiveCommands() ([]*pb.CommandRecord, error)
	// Commands returns every record, ordered by id (inspection and tests).
	Commands() ([]*pb.CommandRecord, error)

	// NodeIDs lists nodes with a seq counter or queued commands.
	NodeIDs() ([]string, error)
	// NodeQueue returns the node's last allocated seq and its queued commands in seq order.
	NodeQueue(node string) (lastSeq uint64, queue []*pb.ControlCommand, err error)
	// Enqueue persists cmd in the node's queue and raises the node's seq counter to cmd.MonotonicSeq, in one
	// synced transaction: a command is never sent before this returns.
	Enqueue(node string, cmd *pb.ControlCommand) error
	// RaiseSeq raises the node's seq counter to seq if it is below (a node whose mark is ahead of ours).
	RaiseSeq(node string, seq uint64) error
	// Dequeue removes commands from the node's queue.
	Dequeue(node string, seqs ...uint64) error
	// SentCommand returns the signed command the node was sent at seq (kept after it leaves the queue, for
	// audit); ErrNotFound when none.
	SentCommand(node string, seq uint64) (*pb.ControlCommand, error)

	// PendingDevices returns the devices nodes reported that are not paired yet.
	PendingDevices() ([]*pb.Device, error)
	// NodeAudit returns the newest limit audit records a node reported, oldest first.
	NodeAudit(node string, limit int) ([]*pb.AuditRecord, error)

	// Commissioning: discovery scans and pairings.
	Commissioning
	// Reconciliation: backfilled local commands, local watermarks, conflicts (local-degraded mode).
	Reconciliation

	Close() error
}

// ValidNodeID reports whether id can be a node id: 1..MaxIDLen bytes, printable, no '/' or whitespace.
func ValidNodeID(id string) error {
	if err := ValidID(id); err != nil {
		return err
	}
	if strings.ContainsAny(id, "/ \t\r\n") {
		return fmt.Errorf("node id %q contains '/' or whitespace: %w", id, ErrInvalidKey)
	}
	return nil
}

// ValidID reports whether id can be a miner or command id: 1..MaxIDLen bytes without control characters.
func ValidID(id string) error {
	if id == "" {
		return fmt.Errorf("empty id: %w", ErrInvalidKey)
	}
	if len(id) > MaxIDLen {
		return fmt.Errorf("id of %d bytes exceeds %d: %w", len(id), MaxIDLen, ErrInvalidKey)
	}
	for _, r := range id {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("id %q contains a control character: %w", id, ErrInvalidKey)
		}
	}
	return nil
}
