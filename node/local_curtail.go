package node

import (
	"context"
	"errors"
	"fmt"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/node/curtail"
	"github.com/hashfleet/hashfleet/node/localui"
)

var _ localui.CurtailEvents = localSite{}

// StartCurtail implements localui.CurtailEvents: a curtailment event started at the local UI (audited as a
// local action, backfilled to the cloud).
func (s localSite) StartCurtail(ctx context.Context, req localui.CurtailEventRequest) (localui.CurtailEventView, error) {
	r := &pb.CurtailRequest{EventId: req.EventID, TargetKw: req.TargetKW, Full: req.Full, MinerIds: req.MinerIDs}
	if !req.EndAt.IsZero() {
		r.EndAtUnixMs = req.EndAt.UnixMilli()
	}
	return s.curtail(ctx, r, req.Actor)
}

// StopCurtail implements localui.CurtailEvents.
func (s localSite) StopCurtail(ctx context.Context, eventID, actor string) (localui.CurtailEventView, error) {
	return s.curtail(ctx, &pb.CurtailRequest{EventId: eventID, Stop: true}, actor)
}

func (s localSite) curtail(ctx context.Context, r *pb.CurtailRequest, actor string) (localui.CurtailEventView, error) {
	_, err := s.n.Curtail(ctx, r, actor)
	if err != nil && isEventRefusal(err) {
		return localui.CurtailEventView{}, fmt.Errorf("%w: %w", localui.ErrInvalidRequest, err)
	}
	if err != nil {
		return localui.CurtailEventView{}, err
	}
	return s.CurtailState(ctx)
}

func isEventRefusal(err error) bool {
	for _, e := range []error{curtail.ErrInvalidEvent, curtail.ErrEventActive, curtail.ErrUnknownEvent, curtail.ErrEventOver} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// CurtailState implements localui.CurtailEvents.
func (s localSite) CurtailState(ctx context.Context) (localui.CurtailEventView, error) {
	d, err := s.n.CurtailDetail(ctx)
	if err != nil {
		return localui.CurtailEventView{}, err
	}
	p := curtail.StatusProto(d)
	return localui.CurtailEventView{EventID: p.GetEventId(), State: p.GetState(), Source: p.GetSource(), Full: p.GetFull(),
		TargetKW: p.GetTargetKw(), AchievedKW: p.GetAchievedKw(), MeasuredKW: d.MeasuredKW, BaselineKW: d.BaselineKW,
		MinersCurtailed: d.MinersCurtailed, MinersPending: d.MinersPending, Stragglers: d.Stragglers}, nil
}
