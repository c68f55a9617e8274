package lease

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
)

// Handle is the concurrency-safe read side of a LeaseHolderActor, for code that must decide inside its own
// Receive without a blocking request: the CommandGate's EpochCheck and every MinerActor write. The actor
// stores a new Permit on every change; reads are a single atomic load.
type Handle struct {
	clk    clock.Clock
	permit atomic.Pointer[Permit]
}

// NewHandle returns a Handle that denies every write until its actor publishes a permit. clk is the
// clock MayWriteNow and EpochCheck read (nil: the wall clock); use the actor's clock.
func NewHandle(clk clock.Clock) *Handle {
	if clk == nil {
		clk = clock.Real()
	}
	h := &Handle{clk: clk}
	h.permit.Store(&Permit{})
	return h
}

func (h *Handle) set(p Permit) { h.permit.Store(&p) }

// Permit returns the latest permit.
func (h *Handle) Permit() Permit { return *h.permit.Load() }

// CurrentEpoch returns the lease epoch writes are tagged with (0: none known).
func (h *Handle) CurrentEpoch() uint64 { return h.permit.Load().Epoch }

// MayWrite reports whether a write may start at now, and the permit to tag it with: its Epoch goes into the
// write log, its Until is the write's I/O deadline.
func (h *Handle) MayWrite(now time.Time) (Permit, bool) {
	p := *h.permit.Load()
	return p, p.Valid(now)
}

// MayWriteNow is MayWrite on the handle's clock.
func (h *Handle) MayWriteNow() (Permit, bool) { return h.MayWrite(h.clk.Now()) }

// EpochCheck fits node/gate.Config.EpochCheck: a cloud command is acted on only if it carries this node's
// current epoch and this node may write now.
func (h *Handle) EpochCheck(epoch uint64) error {
	p, ok := h.MayWriteNow()
	if !ok && p.Mode == ModeConfirming && p.Epoch == epoch {
		return fmt.Errorf("%w (epoch %d)", ErrConfirming, epoch)
	}
	if !ok {
		return fmt.Errorf("%w (%s, epoch %d, command epoch %d)", ErrFenced, p.Mode, p.Epoch, epoch)
	}
	if p.Epoch != epoch {
		return fmt.Errorf("%w: command epoch %d, node epoch %d", ErrWrongEpoch, epoch, p.Epoch)
	}
	return nil
}
