package grains

import (
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
)

// The command decisions of this package, for the clustered Org and Miner grains (server/cloudcluster), which
// keep the same names, records and rules on a shared store.

// NewCommandRecord is the record of a freshly issued command: every miner PENDING.
func NewCommandRecord(id string, req CommandRequest, now time.Time) *pb.CommandRecord {
	return newRecord(id, req, now)
}

// NewCommandID returns a time-ordered (ms, hex) then random command id.
func NewCommandID(now time.Time) string { return newCommandID(now) }

// SameCommand reports whether req asks for what rec records (an idempotent retry).
func SameCommand(rec *pb.CommandRecord, req CommandRequest) bool { return sameCommand(rec, req) }

// IsFinalResult reports whether a code ends a miner's part of a command.
func IsFinalResult(c pb.ResultCode) bool { return isFinal(c) }

// ApplyAck folds a node's CommandAck for its part (minerIDs) into rec; see applyAck.
func ApplyAck(rec *pb.CommandRecord, minerIDs []string, code pb.ResultCode, msg string, now time.Time) bool {
	return applyAck(rec, minerIDs, code, msg, now)
}

// ApplyReport folds a node's CommandResultReport into rec; see applyReport.
func ApplyReport(rec *pb.CommandRecord, minerIDs []string, results []*pb.MinerResult, done bool, now time.Time) bool {
	return applyReport(rec, minerIDs, results, done, now)
}

// ApplyTimeout marks every miner of rec without a final result as timed out.
func ApplyTimeout(rec *pb.CommandRecord, timeout time.Duration, now time.Time) bool {
	return applyTimeout(rec, timeout, now)
}

// RecordStatus is a record's overall status from its per-miner results; see recordStatus.
func RecordStatus(rec *pb.CommandRecord) pb.ResultCode { return recordStatus(rec) }

// SettleRecord updates rec.Status and, when every miner has a final result, FinishedAtUnixMs; it reports
// whether the record finished now.
func SettleRecord(rec *pb.CommandRecord, now time.Time) bool { return settle(rec, now) }
