package cloudcluster

import (
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/server/pgstore"
)

// CommandStore is what Org and Miner grains persist: org commands recorded with every miner PENDING before
// anything is sent, each node's part with the seq it was queued under, and one result row per (command,
// miner) that only the miner's grain writes, conditionally on the row not being final. Shared by every
// member (server/pgstore.Store).
type CommandStore interface {
	// MinerOwners returns the owner (node, and the node's org) of each of ids in the device registry.
	MinerOwners(ids []string) (map[string]pgstore.MinerOwner, error)
	// CreateOrgCommand records rec for org atomically, or returns the id of org's command under rec's
	// idempotency key with existed=true, writing nothing.
	CreateOrgCommand(org string, rec *pb.CommandRecord, nodeOf map[string]string, deadline time.Time) (id string, existed bool, err error)
	// OrgCommandByKey returns the id of org's command under an idempotency key (store.ErrNotFound: none).
	OrgCommandByKey(org, key string) (string, error)
	// OrgCommand returns a command with every miner's current result merged (store.ErrNotFound: none).
	OrgCommand(id string, status func(*pb.CommandRecord) pb.ResultCode) (*pgstore.OrgCommand, error)
	// ActiveOrgCommands lists org's commands with a miner still lacking a final result.
	ActiveOrgCommands(org string) ([]string, error)
	// SetPartSeq records the seq a node's part was queued under.
	SetPartSeq(commandID, node string, seq uint64) error
	// Part returns the node's part of an org command (ok=false: not an org command of this node).
	Part(commandID, node string) (pgstore.CommandPart, bool, error)
	// OpenMiners lists a command's miners without a final result.
	OpenMiners(commandID string) ([]string, error)
	// MinerCommands lists the commands naming a miner (open: only those without its final result).
	MinerCommands(miner, commandID string, open bool) ([]pgstore.MinerCommand, error)
	// PutMinerResult writes a miner's result unless its stored result is final; finished reports that this
	// write gave the command its last final result (the finished record is written with it).
	PutMinerResult(commandID string, r *pb.MinerResult, final bool, settle func(*pb.CommandRecord) bool) (applied, finished bool, err error)
	// MinerTelemetry returns a miner's latest sample (store.ErrNotFound: none).
	MinerTelemetry(miner string) (*pb.Telemetry, error)
	// OverdueOrgs lists the orgs with a command still open past its deadline.
	OverdueOrgs(now time.Time) ([]string, error)
}

var _ CommandStore = (*pgstore.Store)(nil)

// commandStoreOf is cfg.Commands, or cfg.Store when it is a CommandStore (server/pgstore).
func commandStoreOf(cfg Config) CommandStore {
	if cfg.Commands != nil {
		return cfg.Commands
	}
	if cs, ok := cfg.Store.(CommandStore); ok {
		return cs
	}
	return nil
}
