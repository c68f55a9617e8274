package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashfleet/hashfleet/actors"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/node/automation"
	"github.com/hashfleet/hashfleet/node/curtail"
	"github.com/hashfleet/hashfleet/node/gate"
	"github.com/hashfleet/hashfleet/node/site"
	"github.com/hashfleet/hashfleet/node/store"
	"google.golang.org/protobuf/proto"
)

// SiteAutomationConfig tunes the node's curtailment and site automation (node/curtail, node/automation).
type SiteAutomationConfig struct {
	// Curtail tunes curtailment: choice order, ramp step (kW, miners) and interval, tolerances, verification
	// settle time, straggler retries. Zero value: curtail.DefaultConfig() (250 kW per 30 s, 5 kW / 1 %).
	Curtail curtail.Config
	// Automation tunes rule evaluation (tick, command retry, reboot grace). Zero value:
	// automation.DefaultConfig(); NodeID and Site are always the node's.
	Automation automation.Config
	// BoardInterval is how often the miners' live statuses are copied to the board curtailment and
	// automation read. Default 2s.
	BoardInterval time.Duration
}

// withDefaults fills zero values.
func (c SiteAutomationConfig) withDefaults(nodeID, site string) SiteAutomationConfig {
	if c.Curtail.StepInterval == 0 && c.Curtail.TickInterval == 0 && c.Curtail.StepKW == 0 && c.Curtail.StepMiners == 0 {
		c.Curtail = curtail.DefaultConfig()
	}
	if c.Automation.TickInterval == 0 && c.Automation.CommandRetry == 0 && c.Automation.RebootGrace == 0 {
		c.Automation = automation.DefaultConfig()
	}
	c.Automation.NodeID, c.Automation.Site = nodeID, site
	if c.BoardInterval <= 0 {
		c.BoardInterval = 2 * time.Second
	}
	return c
}

// Validate reports a configuration an operator must fix.
func (c SiteAutomationConfig) Validate() error {
	return errors.Join(c.Curtail.Validate(), c.Automation.Validate())
}

// siteAutomation is the node's curtailment and automation: the CurtailActor and AutomationActor, the board
// of live miner snapshots they read (kept by the BoardFeeder), the SiteControl actor that runs the gate's
// site-policy and curtailment commands on them, and the pool guard the gate consults.
//
//	SiteSupervisor ──List──▶ BoardFeeder ──▶ Board ◀── CurtailActor, AutomationActor
//	CommandGate ──ControlDispatch──▶ SiteControl ──▶ AutomationActor (InstallPolicy), CurtailActor (Start/Stop)
//	CurtailActor, AutomationActor ──site.Dispatch──▶ SiteSupervisor ──▶ MinerActors (the normal command path)
//	automatic actions ──audit record──▶ node store + TelemetryBatcher (spooled; backfilled on reconnect)
type siteAutomation struct {
	n       *Node
	cfg     SiteAutomationConfig
	store   *store.Badger
	sys     *actor.ActorSystem
	site    *actor.PID
	batcher *actor.PID
	log     *slog.Logger

	board                                *curtail.Board
	guard                                *automation.PoolGuard
	feeder, curtail, automation, control *actor.PID

	mu     sync.Mutex
	status *pb.CurtailStatus // last reported
	events atomic.Uint64
}

// spawnSiteAutomation starts curtailment and automation (after the site and the batcher, before the gate).
func (n *Node) spawnSiteAutomation(spawn func(string, *actor.Props) (*actor.PID, error), am *actors.Metrics) error {
	cfg := n.cfg.SiteAutomation.withDefaults(n.cfg.NodeID, n.cfg.Site)
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("site automation config: %w", err)
	}
	a := &siteAutomation{n: n, cfg: cfg, store: n.store, sys: n.sys, site: n.site, batcher: n.batcher, log: n.log,
		board: curtail.NewBoard(nil, nil), guard: automation.NewPoolGuard()}
	n.auto = a
	var err error
	if a.feeder, err = spawn("curtail-board", curtail.FeederProps(curtail.FeederEnv{Site: n.site, Board: a.board,
		Interval: cfg.BoardInterval, Clock: n.cfg.Clock, ActorMetrics: am, Logger: n.cfg.Logger})); err != nil {
		return err
	}
	if a.curtail, err = spawn("curtail", curtail.Props(cfg.Curtail, curtail.Env{NodeID: n.cfg.NodeID,
		Commander: curtail.CommanderFunc(a.dispatch), Snapshots: a.board, Clock: n.cfg.Clock, OnStatus: a.onCurtailStatus,
		Initial: a.loadCurtail(), Persist: a.saveCurtail, Active: n.mayWrite,
		Metrics: curtail.NewMetrics(n.cfg.Registerer), ActorMetrics: am, Logger: n.cfg.Logger})); err != nil {
		return err
	}
	env := automation.Env{Commander: curtail.CommanderFunc(a.dispatch), Snapshots: a.board, Curtail: a.curtail,
		Auditor: automation.AuditorFunc(a.audit), Store: policyStore{n.store}, PoolGuard: a.guard, Active: n.mayWrite, Clock: n.cfg.Clock,
		Metrics: automation.NewMetrics(n.cfg.Registerer), ActorMetrics: am, Logger: n.cfg.Logger}
	if keys := n.policyKeys(); keys != nil {
		env.Keys = keys
	}
	if a.automation, err = spawn("automation", automation.Props(cfg.Automation, env)); err != nil {
		return err
	}
	a.control, err = spawn("site-control", gate.SiteControlProps(gate.SiteControlEnv{Automation: a.automation,
		Curtail: a.curtail, Clock: n.cfg.Clock, ActorMetrics: am, Logger: n.cfg.Logger}))
	return err
}

// mayWrite reports whether the node may command miners now: always outside a warm-standby pair; in a pair,
// only while it holds the lease (the standby keeps policies and events, and acts once promoted).
func (n *Node) mayWrite() bool {
	_, _, err := n.guard.BeginWrite()
	return err == nil
}

// policyKeys is the trust store site policies are verified against: the node's keyring, else the org keys in
// its Config; nil when it has neither (every policy is then refused).
func (n *Node) policyKeys() automation.KeySource {
	if n.keyring != nil {
		return n.keyring
	}
	if n.cfg.OrgID != "" && len(n.cfg.CommandKeys) > 0 {
		return staticKeys{org: n.cfg.OrgID, keys: n.cfg.CommandKeys}
	}
	return nil
}

type staticKeys struct {
	org  string
	keys []*pb.CommandKey
}

func (s staticKeys) OrgID() string              { return s.org }
func (s staticKeys) Snapshot() []*pb.CommandKey { return s.keys }

// stop stops the actors that command miners (before the site stops).
func (a *siteAutomation) stop() {
	for _, pid := range []*actor.PID{a.control, a.automation, a.curtail, a.feeder} {
		if pid == nil {
			continue
		}
		if err := a.sys.Root.StopFuture(pid).Wait(); err != nil {
			a.log.Warn("actor did not confirm its stop", slog.String("actor", pid.Id), slog.Any("error", err))
		}
	}
	a.control, a.automation, a.curtail, a.feeder = nil, nil, nil, nil
}

// dispatch is the Commander of curtailment and automation: the site supervisor's normal command path, so
// their writes go through the same miner actors and limiter as the cloud's. Curtailment ramp steps are
// audited here (automation audits its own actions with the rule that fired).
func (a *siteAutomation) dispatch(c curtail.Command, replyTo *actor.PID) {
	if strings.HasPrefix(c.Actor, "curtail:") {
		a.record(&pb.AuditRecord{CommandId: c.CommandID, Actor: c.Actor, MinerIds: append([]string(nil), c.MinerIDs...),
			Code: pb.ResultCode_RESULT_CODE_RUNNING, AtUnixMs: a.n.cfg.Clock.Now().UnixMilli(), LocalOrigin: true, NodeId: a.n.cfg.NodeID,
			Message: fmt.Sprintf("curtailment step: %s on %d miners", c.Spec.GetAction(), len(c.MinerIDs))}, pb.EventKind_EVENT_KIND_COMMAND_AUDIT, "")
	}
	a.sys.Root.RequestWithCustomSender(a.site, &site.Dispatch{CommandID: c.CommandID, IdempotencyKey: c.IdempotencyKey,
		MinerIDs: c.MinerIDs, Spec: c.Spec}, replyTo)
}

// audit is automation's Auditor: the record goes to the node's audit log and, as an EVENT_KIND_RULE_FIRED
// event naming the rule, toward the cloud (spooled while the WAN is down).
func (a *siteAutomation) audit(rec *pb.AuditRecord) {
	a.record(rec, pb.EventKind_EVENT_KIND_RULE_FIRED, strings.TrimPrefix(rec.GetActor(), "automation:"))
}

func (a *siteAutomation) record(rec *pb.AuditRecord, kind pb.EventKind, rule string) {
	if err := a.store.AppendAudit(rec); err != nil {
		a.log.Error("cannot write the audit record of an automatic action", slog.String("command", rec.GetCommandId()),
			slog.String("actor", rec.GetActor()), slog.Any("error", err))
	}
	ev := &pb.Event{EventId: fmt.Sprintf("audit/%s/local/%s/%d/%d", a.n.cfg.NodeID, rec.GetCommandId(), rec.GetAtUnixMs(), a.events.Add(1)),
		Kind: kind, Message: rec.GetMessage(), AtUnixMs: rec.GetAtUnixMs(), Audit: rec, Rule: rule}
	if kind == pb.EventKind_EVENT_KIND_RULE_FIRED {
		ev = automation.RuleFiredEvent(rec)
		ev.EventId, ev.Rule = fmt.Sprintf("rule/%s/%s/%d", a.n.cfg.NodeID, rec.GetCommandId(), a.events.Add(1)), rule
	}
	a.sys.Root.Send(a.batcher, ev)
}

// onCurtailStatus reports a changed curtailment status to the cloud as an EVENT_KIND_CURTAIL event.
func (a *siteAutomation) onCurtailStatus(s curtail.Status) {
	p := curtail.StatusProto(s)
	a.mu.Lock()
	same := a.status != nil && proto.Equal(a.status, p)
	if !same {
		a.status = p
	}
	a.mu.Unlock()
	if same || (p.GetState() == "idle" && p.GetEventId() == "") {
		return
	}
	now := a.n.cfg.Clock.Now().UnixMilli()
	a.sys.Root.Send(a.batcher, &pb.Event{EventId: fmt.Sprintf("curtail/%s/%s/%d/%d", a.n.cfg.NodeID, p.GetEventId(), now, a.events.Add(1)),
		Kind: pb.EventKind_EVENT_KIND_CURTAIL, AtUnixMs: now, Curtail: p,
		Message: fmt.Sprintf("curtailment %s %s: %s", p.GetEventId(), p.GetState(), s.Describe())})
}

// loadCurtail restores the curtailment state a previous run kept (nil: idle). An unreadable state is logged
// and dropped: the node starts idle rather than not at all.
func (a *siteAutomation) loadCurtail() *curtail.State {
	b, err := a.store.CurtailState()
	if err != nil || b == nil {
		if err != nil {
			a.log.Error("cannot read the stored curtailment state; starting idle", slog.Any("error", err))
		}
		return nil
	}
	var st curtail.State
	if err := json.Unmarshal(b, &st); err != nil {
		a.log.Error("stored curtailment state unreadable; starting idle", slog.Any("error", err))
		return nil
	}
	if err := st.Config.Validate(); err != nil {
		a.log.Error("stored curtailment state has an invalid configuration; starting idle", slog.Any("error", err))
		return nil
	}
	if st.Phase == curtail.PhaseIdle { // nothing to resume: new events take the configuration in force
		idle := curtail.NewState(a.cfg.Curtail)
		idle.Last = st.Last
		return &idle
	}
	if st.Tracks == nil {
		st.Tracks = map[string]curtail.Track{}
	}
	a.log.Info("resuming the curtailment event in progress", slog.String("event", st.Event.ID), slog.String("phase", st.Phase.String()),
		slog.Int("miners", len(st.Tracks)))
	return &st
}

// saveCurtail is the CurtailActor's Persist: the state after every start, stop, step and phase change.
func (a *siteAutomation) saveCurtail(st curtail.State) {
	b, err := json.Marshal(st)
	if err == nil {
		err = a.store.SetCurtailState(b)
	}
	if err != nil {
		a.log.Error("cannot keep the curtailment state; a restart would not resume the event", slog.Any("error", err))
	}
}

// policyStore keeps the signed site policy in the node's Badger store.
type policyStore struct{ st *store.Badger }

func (p policyStore) LoadPolicy() (*automation.SignedPolicy, error) {
	sp, err := p.st.SitePolicy()
	if err != nil || sp == nil {
		return nil, err
	}
	return &automation.SignedPolicy{Body: sp.GetBody(), KeyID: sp.GetKeyId(), Signature: sp.GetSignature()}, nil
}

func (p policyStore) SavePolicy(sp *automation.SignedPolicy) error {
	return p.st.SetSitePolicy(&pb.SitePolicy{Body: sp.Body, KeyId: sp.KeyID, Signature: sp.Signature})
}

func (n *Node) siteAutomation() (*actor.ActorSystem, *siteAutomation, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.started || n.auto == nil {
		return nil, nil, ErrNotStarted
	}
	return n.sys, n.auto, nil
}

// Curtail starts (or, with req.Stop, stops) a curtailment event from a UI: target_kw is the power to shed,
// full curtails every miner in scope, miner_ids limits the scope, end_at_unix_ms ends it by itself. source
// names who asked ("local:admin"). The request is audited as a local action (backfilled to the cloud). An
// invalid event, or a stop naming an event not in progress, returns the current status and an error
// wrapping curtail.ErrInvalidEvent, ErrEventActive, ErrUnknownEvent or ErrEventOver.
func (n *Node) Curtail(ctx context.Context, req *pb.CurtailRequest, source string) (*pb.CurtailStatus, error) {
	sys, a, err := n.siteAutomation()
	if err != nil {
		return nil, err
	}
	if req == nil {
		return nil, fmt.Errorf("curtail: no request: %w", curtail.ErrInvalidEvent)
	}
	req = proto.Clone(req).(*pb.CurtailRequest)
	now := n.cfg.Clock.Now()
	if req.GetEventId() == "" && !req.GetStop() {
		req.EventId = fmt.Sprintf("local-%d", now.UnixMilli())
	}
	var msg any = &curtail.StartEvent{Event: curtail.EventFromRequest(req, source)}
	what := "start"
	if req.GetStop() {
		msg, what = &curtail.StopEvent{EventID: req.GetEventId(), Reason: "stopped by " + source}, "stop"
	}
	r, err := actors.Request[*curtail.EventReply](sys.Root, a.curtail, msg, timeout(ctx))
	if err != nil {
		return nil, fmt.Errorf("curtail %s %s: %w", what, req.GetEventId(), err)
	}
	rec := &pb.AuditRecord{CommandId: "curtail/" + req.GetEventId() + "/" + what, Actor: source, MinerIds: req.GetMinerIds(),
		Code: pb.ResultCode_RESULT_CODE_SUCCEEDED, AtUnixMs: now.UnixMilli(), LocalOrigin: true, NodeId: n.cfg.NodeID,
		Message: fmt.Sprintf("curtailment %s %s: %s", req.GetEventId(), what, r.Status.Describe())}
	if r.Err != nil {
		rec.Code, rec.Message = pb.ResultCode_RESULT_CODE_FAILED, fmt.Sprintf("curtailment %s %s refused: %v", req.GetEventId(), what, r.Err)
	}
	a.record(rec, pb.EventKind_EVENT_KIND_COMMAND_AUDIT, "")
	if r.Err != nil {
		return curtail.StatusProto(r.Status), fmt.Errorf("curtail %s %s: %w", what, req.GetEventId(), r.Err)
	}
	return curtail.StatusProto(r.Status), nil
}

// CurtailStatus returns curtailment's state: the event in progress (or the last one's outcome), as the
// cloud sees it in EVENT_KIND_CURTAIL events.
func (n *Node) CurtailStatus(ctx context.Context) ([]*pb.CurtailStatus, error) {
	s, err := n.CurtailDetail(ctx)
	if err != nil {
		return nil, err
	}
	return []*pb.CurtailStatus{curtail.StatusProto(s)}, nil
}

// CurtailDetail returns the CurtailActor's full status (phase, ceiling, baseline, measured and shed kW,
// miners by state, stragglers).
func (n *Node) CurtailDetail(ctx context.Context) (curtail.Status, error) {
	sys, a, err := n.siteAutomation()
	if err != nil {
		return curtail.Status{}, err
	}
	return actors.Request[curtail.Status](sys.Root, a.curtail, &curtail.StatusRequest{}, timeout(ctx))
}

// AutomationStatus returns the site automation's state: installed policy version, held and rebooting
// miners, the active schedule, deferred reboots and trusted pools.
func (n *Node) AutomationStatus(ctx context.Context) (automation.Status, error) {
	sys, a, err := n.siteAutomation()
	if err != nil {
		return automation.Status{}, err
	}
	return actors.Request[automation.Status](sys.Root, a.automation, &automation.StatusRequest{}, timeout(ctx))
}

// InstallSitePolicy verifies and installs a signed site policy given at a UI (the cloud sends it as a
// signed command). Errors wrap the automation package's refusals (ErrBadPolicySignature, ErrStalePolicy, …).
func (n *Node) InstallSitePolicy(ctx context.Context, sp *pb.SitePolicy, source string) (uint64, error) {
	sys, a, err := n.siteAutomation()
	if err != nil {
		return 0, err
	}
	r, err := actors.Request[*automation.InstallReply](sys.Root, a.automation, &automation.InstallPolicy{
		Signed: &automation.SignedPolicy{Body: sp.GetBody(), KeyID: sp.GetKeyId(), Signature: sp.GetSignature()}, Source: source}, timeout(ctx))
	if err != nil {
		return 0, fmt.Errorf("install site policy: %w", err)
	}
	return r.Version, r.Err
}
