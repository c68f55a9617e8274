package grains

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashfleet/hashfleet/actors"
	"github.com/hashfleet/hashfleet/server/lease"
	"github.com/hashfleet/hashfleet/server/store"
)

// pairDefaults fills the pair stores from Store and the lease timing from its defaults.
func pairDefaults(cfg *Config) error {
	if cfg.Lease == (lease.Config{}) {
		cfg.Lease = lease.DefaultConfig()
	}
	if cfg.Pairs == nil {
		if ps, ok := cfg.Store.(store.PairStore); ok {
			cfg.Pairs = ps
		}
	}
	if cfg.Leases == nil {
		if db, ok := cfg.Store.(interface{ DB() *badger.DB }); ok {
			ls, err := lease.NewBadger(db.DB())
			if err != nil {
				return fmt.Errorf("grains: %w", err)
			}
			cfg.Leases = ls
		} else if ls, ok := cfg.Store.(lease.Store); ok { // server/pgstore
			cfg.Leases = ls
		}
	}
	cfg.LeaseMetrics.SetClock(cfg.Clock)
	return nil
}

// DeclarePair records an operator-confirmed warm-standby pair, seals its key to both members and starts its
// lease. Errors wrap ErrInvalidPair, ErrUnknownNode, ErrUnknownMiner, ErrPairConflict, ErrPairsUnsupported
// or ErrStore.
func (f *Fleet) DeclarePair(ctx context.Context, d PairDeclaration) (PairStatus, error) {
	snap, err := ask[pairSnapshot](ctx, f, toOrg, &declarePair{decl: d})
	if err != nil {
		return PairStatus{}, err
	}
	return f.pairStatus(ctx, snap), nil
}

// DeletePair ends a pair (ErrUnknownPair when there is none).
func (f *Fleet) DeletePair(ctx context.Context, id string) error {
	_, err := ask[okReply](ctx, f, toOrg, &deletePair{id: id})
	return err
}

// RequestTransfer records an operator's request that the pair's holder hand the lease to member to. The
// holder performs it (it must fence and drain first); the request clears when the lease reaches to.
func (f *Fleet) RequestTransfer(ctx context.Context, id, to, actor string) (PairStatus, error) {
	snap, err := ask[pairSnapshot](ctx, f, toOrg, &requestTransfer{id: id, to: to, actor: actor})
	if err != nil {
		return PairStatus{}, err
	}
	return f.pairStatus(ctx, snap), nil
}

// Pair returns one pair with its lease; ErrUnknownPair when there is none.
func (f *Fleet) Pair(ctx context.Context, id string) (PairStatus, error) {
	snap, err := ask[pairSnapshot](ctx, f, toOrg, &getPair{id: id})
	if err != nil {
		return PairStatus{}, err
	}
	return f.pairStatus(ctx, snap), nil
}

// Pairs returns every pair with its lease, ordered by id.
func (f *Fleet) Pairs(ctx context.Context) ([]PairStatus, error) {
	snaps, err := ask[[]pairSnapshot](ctx, f, toOrg, &listPairs{})
	if err != nil {
		return nil, err
	}
	out := make([]PairStatus, 0, len(snaps))
	for _, s := range snaps {
		out = append(out, f.pairStatus(ctx, s))
	}
	return out, nil
}

// pairStatus adds the lease's state to the Org's snapshot. A lease actor that does not answer leaves the
// lease fields empty (the record is still shown).
func (f *Fleet) pairStatus(ctx context.Context, s pairSnapshot) PairStatus {
	r := s.rec
	st := PairStatus{ID: r.ID, Site: r.Site, Members: r.Members, Standby: r.Standby, Devices: slices.Clone(r.Devices),
		DeclaredBy: r.DeclaredBy, DeclaredAt: r.DeclaredAt, GossipAddrs: maps.Clone(s.gossip), Transfer: r.Transfer,
		History: slices.Clone(r.Failovers), AsOf: f.cfg.Clock.Now()}
	if s.lease == nil {
		return st
	}
	ls, err := actors.Request[*lease.Status](f.system.Root, s.lease, &lease.StatusRequest{}, f.timeout(ctx))
	if err != nil {
		f.cfg.Logger.Warn("pair status: lease grain did not answer", slog.String("pair", r.ID), slog.Any("err", err))
		return st
	}
	st.Holder, st.Epoch, st.ExpiresAt, st.Live, st.Heard, st.AsOf = ls.Holder, ls.Epoch, ls.ExpiresAt, ls.Live, ls.Heard, ls.AsOf
	return st
}
