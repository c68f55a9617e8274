package grains

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/node/automation"
	"github.com/hashfleet/hashfleet/server/store"
	"google.golang.org/protobuf/proto"
)

// Sites: the cloud's side of node-local automation and curtailment. An operator's policy for a site is
// completed (org, site, next version), signed with the org's command key (automation.SignPolicy: the node
// re-verifies it from its own store), kept, and sent to every node of the site as a signed node-control
// command; a curtailment start or stop goes the same way. Nodes answer each command (SUCCEEDED, or FAILED
// with the reason) and report their curtailment state in EVENT_KIND_CURTAIL events, whose latest per node is
// kept; automatic actions arrive as EVENT_KIND_RULE_FIRED events and join the node's audit.

const (
	sitePolicyCmdPrefix = "sitepol-"
	curtailCmdPrefix    = "curtail-"
)

// SitePolicyRequest is an operator's policy for a site: the JSON of an automation.Policy without org and
// site (the cloud fills them); version 0 means the next one.
type SitePolicyRequest struct {
	Site  string
	JSON  []byte
	Actor string
}

// SiteNodeOutcome is one node's answer to a site command ("" code: not answered yet).
type SiteNodeOutcome struct {
	Node      string
	CommandID string
	Code      string
	Message   string
	At        time.Time
}

// SitePolicyView is a site's current policy and each node's answer to it.
type SitePolicyView struct {
	Site    string
	Version uint64
	KeyID   string
	// Policy is the signed policy's JSON, exactly as signed.
	Policy json.RawMessage
	Nodes  []SiteNodeOutcome
}

// SiteCurtailRequest starts (target_kw to shed, or full; optional miners and end) or stops a curtailment
// event on a site's nodes.
type SiteCurtailRequest struct {
	Site     string
	EventID  string
	Stop     bool
	TargetKW float64
	Full     bool
	MinerIDs []string
	EndAt    time.Time
	Actor    string
}

// SiteCurtailStarted says which node got which command.
type SiteCurtailStarted struct {
	Site    string
	EventID string
	Nodes   []SiteNodeOutcome
}

// NodeCurtail is a node's latest curtailment state (nil: never reported) and its answer to the latest
// curtailment command the cloud sent it.
type NodeCurtail struct {
	Node    string
	Status  *pb.CurtailStatus
	Command *SiteNodeOutcome
}

func (f *Fleet) sites() (store.Sites, error) {
	s, ok := f.cfg.Store.(store.Sites)
	if !ok {
		return nil, fmt.Errorf("%w: this server's store keeps no site records", ErrInvalidSite)
	}
	return s, nil
}

func validSiteName(site string) error {
	if site == "" || len(site) > 128 || strings.ContainsAny(site, "/\x00") {
		return fmt.Errorf("%w: site %q (1 to 128 bytes, no '/')", ErrInvalidSite, site)
	}
	return nil
}

// siteNodes returns the nodes of site: Config.SiteNodes, else every node the org knows.
func (f *Fleet) siteNodes(ctx context.Context, site string) ([]string, error) {
	var nodes []string
	var err error
	if f.cfg.SiteNodes != nil {
		nodes, err = f.cfg.SiteNodes(site)
	} else {
		nodes, err = ask[[]string](ctx, f, toOrg, &siteAllNodes{})
	}
	if err != nil {
		return nil, err
	}
	if len(nodes) == 0 {
		return nil, fmt.Errorf("%w: no node at site %q", ErrUnknownSite, site)
	}
	slices.Sort(nodes)
	return nodes, nil
}

// PutSitePolicy completes, signs, keeps and sends a site's policy. Errors wrap ErrInvalidSite (no signer,
// bad site name, a policy that does not validate), ErrStalePolicy, ErrUnknownSite or ErrStore.
func (f *Fleet) PutSitePolicy(ctx context.Context, r SitePolicyRequest) (SitePolicyView, error) {
	if err := validSiteName(r.Site); err != nil {
		return SitePolicyView{}, err
	}
	if f.cfg.PolicySigner == nil {
		return SitePolicyView{}, fmt.Errorf("%w: this server has no org command key to sign policies", ErrInvalidSite)
	}
	st, err := f.sites()
	if err != nil {
		return SitePolicyView{}, err
	}
	var p automation.Policy
	dec := json.NewDecoder(bytes.NewReader(r.JSON))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return SitePolicyView{}, fmt.Errorf("%w: policy: %v", ErrInvalidSite, err)
	}
	if p.Org != "" && p.Org != f.cfg.OrgID {
		return SitePolicyView{}, fmt.Errorf("%w: policy names org %q, this is %q", ErrInvalidSite, p.Org, f.cfg.OrgID)
	}
	if p.Site != "" && p.Site != r.Site {
		return SitePolicyView{}, fmt.Errorf("%w: policy names site %q, the path %q", ErrInvalidSite, p.Site, r.Site)
	}
	var prev uint64
	if cur, err := st.SitePolicy(r.Site); err == nil {
		if cp, err := automation.DecodePolicy(cur.GetBody()); err == nil {
			prev = cp.Version
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		return SitePolicyView{}, fmt.Errorf("%w: read site policy: %v", ErrStore, err)
	}
	switch {
	case p.Version == 0:
		p.Version = prev + 1
	case p.Version <= prev:
		return SitePolicyView{}, fmt.Errorf("%w: version %d, site %q has v%d", ErrStalePolicy, p.Version, r.Site, prev)
	}
	nodes, err := f.siteNodes(ctx, r.Site)
	if err != nil {
		return SitePolicyView{}, err
	}
	p.Org, p.Site, p.IssuedAt = f.cfg.OrgID, r.Site, f.cfg.Clock.Now().UTC().Truncate(time.Millisecond)
	signed, err := f.cfg.PolicySigner(p)
	if err != nil {
		return SitePolicyView{}, fmt.Errorf("%w: %v", ErrInvalidSite, err)
	}
	sp := &pb.SitePolicy{Body: signed.Body, KeyId: signed.KeyID, Signature: signed.Signature}
	if err := st.PutSitePolicy(r.Site, sp); err != nil {
		return SitePolicyView{}, fmt.Errorf("%w: site policy: %v", ErrStore, err)
	}
	payload, err := proto.Marshal(&pb.CommandPayload{SitePolicy: sp})
	if err != nil {
		return SitePolicyView{}, fmt.Errorf("%w: %v", ErrInvalidSite, err)
	}
	base := fmt.Sprintf("%sv%d-", sitePolicyCmdPrefix, p.Version)
	sent, err := ask[[]SiteNodeOutcome](ctx, f, toOrg, &siteSend{site: r.Site, base: base, actor: r.Actor, payloads: sameFor(nodes, payload)})
	if err != nil {
		return SitePolicyView{}, err
	}
	return SitePolicyView{Site: r.Site, Version: p.Version, KeyID: sp.GetKeyId(), Policy: json.RawMessage(sp.GetBody()), Nodes: sent}, nil
}

func sameFor(nodes []string, payload []byte) map[string][]byte {
	m := make(map[string][]byte, len(nodes))
	for _, n := range nodes {
		m[n] = payload
	}
	return m
}

// SitePolicy returns a site's current policy and each node's answer to it; ErrUnknownSite without one.
func (f *Fleet) SitePolicy(ctx context.Context, site string) (SitePolicyView, error) {
	if err := validSiteName(site); err != nil {
		return SitePolicyView{}, err
	}
	st, err := f.sites()
	if err != nil {
		return SitePolicyView{}, err
	}
	sp, err := st.SitePolicy(site)
	if errors.Is(err, store.ErrNotFound) {
		return SitePolicyView{}, fmt.Errorf("%w: site %q has no policy", ErrUnknownSite, site)
	} else if err != nil {
		return SitePolicyView{}, fmt.Errorf("%w: %v", ErrStore, err)
	}
	p, err := automation.DecodePolicy(sp.GetBody())
	if err != nil {
		return SitePolicyView{}, fmt.Errorf("%w: stored policy: %v", ErrStore, err)
	}
	out := SitePolicyView{Site: site, Version: p.Version, KeyID: sp.GetKeyId(), Policy: json.RawMessage(sp.GetBody())}
	prefix := fmt.Sprintf("%sv%d-", sitePolicyCmdPrefix, p.Version)
	outs, err := ask[[]SiteNodeOutcome](ctx, f, toOrg, &siteOutcomes{prefix: prefix})
	if err != nil {
		return SitePolicyView{}, err
	}
	out.Nodes = outs
	return out, nil
}

// SiteCurtail starts or stops a curtailment event on a site's nodes. A target is split across the site's
// nodes in proportion to the miners in scope each owns (each node sheds its share from its own miners); a
// scope naming miners sends each node only its own. Errors wrap ErrInvalidSite, ErrUnknownSite,
// ErrUnknownMiner or ErrStore.
func (f *Fleet) SiteCurtail(ctx context.Context, r SiteCurtailRequest) (SiteCurtailStarted, error) {
	if err := validSiteName(r.Site); err != nil {
		return SiteCurtailStarted{}, err
	}
	now := f.cfg.Clock.Now()
	if r.EventID == "" {
		if r.Stop {
			return SiteCurtailStarted{}, fmt.Errorf("%w: a stop names the event_id", ErrInvalidSite)
		}
		r.EventID = newID("ev-", now)
	}
	if err := store.ValidID(r.EventID); err != nil || len(r.EventID) > 100 {
		return SiteCurtailStarted{}, fmt.Errorf("%w: event id %q", ErrInvalidSite, r.EventID)
	}
	if !r.Stop {
		switch {
		case math.IsNaN(r.TargetKW) || math.IsInf(r.TargetKW, 0) || r.TargetKW < 0:
			return SiteCurtailStarted{}, fmt.Errorf("%w: target_kw %v", ErrInvalidSite, r.TargetKW)
		case r.Full == (r.TargetKW > 0):
			return SiteCurtailStarted{}, fmt.Errorf("%w: give target_kw (above 0) or full, one of them", ErrInvalidSite)
		case !r.EndAt.IsZero() && !r.EndAt.After(now):
			return SiteCurtailStarted{}, fmt.Errorf("%w: end_at %s is not in the future", ErrInvalidSite, r.EndAt.UTC().Format(time.RFC3339))
		case len(r.MinerIDs) > f.cfg.MaxCommandMiners:
			return SiteCurtailStarted{}, fmt.Errorf("%w: %d miners (at most %d)", ErrInvalidSite, len(r.MinerIDs), f.cfg.MaxCommandMiners)
		}
	}
	nodes, err := f.siteNodes(ctx, r.Site)
	if err != nil {
		return SiteCurtailStarted{}, err
	}
	shares, err := ask[map[string][]string](ctx, f, toOrg, &siteShares{nodes: nodes, minerIDs: r.MinerIDs})
	if err != nil {
		return SiteCurtailStarted{}, err
	}
	total := 0
	for _, ids := range shares {
		total += len(ids)
	}
	payloads := map[string][]byte{}
	for _, n := range nodes {
		ids, ok := shares[n]
		if !ok && len(r.MinerIDs) > 0 && !r.Stop {
			continue // none of the named miners is this node's
		}
		req := &pb.CurtailRequest{EventId: r.EventID, Stop: r.Stop, Full: r.Full}
		if !r.Stop {
			if len(r.MinerIDs) > 0 {
				req.MinerIds = ids
			}
			if r.TargetKW > 0 {
				req.TargetKw = r.TargetKW
				if total > 0 && len(nodes) > 1 {
					req.TargetKw = r.TargetKW * float64(len(ids)) / float64(total)
				}
			}
			if !r.EndAt.IsZero() {
				req.EndAtUnixMs = r.EndAt.UnixMilli()
			}
		}
		b, err := proto.Marshal(&pb.CommandPayload{Curtail: req})
		if err != nil {
			return SiteCurtailStarted{}, fmt.Errorf("%w: %v", ErrInvalidSite, err)
		}
		payloads[n] = b
	}
	what := "start"
	if r.Stop {
		what = "stop"
	}
	base := fmt.Sprintf("%s%s-%s-", curtailCmdPrefix, r.EventID, what)
	sent, err := ask[[]SiteNodeOutcome](ctx, f, toOrg, &siteSend{site: r.Site, base: base, actor: r.Actor, payloads: payloads})
	if err != nil {
		return SiteCurtailStarted{}, err
	}
	return SiteCurtailStarted{Site: r.Site, EventID: r.EventID, Nodes: sent}, nil
}

// SiteCurtailStatus returns each node of a site's latest curtailment state and its answer to the latest
// curtailment command.
func (f *Fleet) SiteCurtailStatus(ctx context.Context, site string) ([]NodeCurtail, error) {
	if err := validSiteName(site); err != nil {
		return nil, err
	}
	st, err := f.sites()
	if err != nil {
		return nil, err
	}
	nodes, err := f.siteNodes(ctx, site)
	if err != nil {
		return nil, err
	}
	all, err := st.CurtailStatuses()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrStore, err)
	}
	outs, err := ask[[]SiteNodeOutcome](ctx, f, toOrg, &siteOutcomes{prefix: curtailCmdPrefix, latest: true})
	if err != nil {
		return nil, err
	}
	byNode := map[string]SiteNodeOutcome{}
	for _, o := range outs {
		byNode[o.Node] = o
	}
	out := make([]NodeCurtail, 0, len(nodes))
	for _, n := range nodes {
		nc := NodeCurtail{Node: n, Status: all[n]}
		if o, ok := byNode[n]; ok {
			nc.Command = &o
		}
		out = append(out, nc)
	}
	return out, nil
}

// --- the Org's part ---

// siteMessage is a message the Org hands to onSite.
type siteMessage interface{ siteMessage() }

type siteAllNodes struct{}

// siteSend enqueues one node-control command per node (payload by node), ids base+node.
type siteSend struct {
	site, base, actor string
	payloads          map[string][]byte
}

// siteOutcomes asks for the outcomes of commands whose id starts with prefix (latest: one per node).
type siteOutcomes struct {
	prefix string
	latest bool
}

// siteShares splits miners by owning node among nodes (all their miners when minerIDs is empty).
type siteShares struct {
	nodes    []string
	minerIDs []string
}

func (siteAllNodes) siteMessage()  {}
func (*siteSend) siteMessage()     {}
func (*siteOutcomes) siteMessage() {}
func (*siteShares) siteMessage()   {}

// siteBook is the Org's record of site commands and their answers (in memory: a restarted server shows
// answers to commands sent since).
type siteBook struct {
	outcomes map[string]SiteNodeOutcome // by command id
	order    []string
}

const maxSiteOutcomes = 10_000

func (b *siteBook) put(o SiteNodeOutcome) {
	if b.outcomes == nil {
		b.outcomes = map[string]SiteNodeOutcome{}
	}
	if _, ok := b.outcomes[o.CommandID]; !ok {
		b.order = append(b.order, o.CommandID)
		if len(b.order) > maxSiteOutcomes {
			delete(b.outcomes, b.order[0])
			b.order = b.order[1:]
		}
	}
	b.outcomes[o.CommandID] = o
}

func (o *Org) onSite(ctx actor.Context, m siteMessage) {
	switch m := m.(type) {
	case siteAllNodes, *siteAllNodes:
		ids := slices.Collect(maps.Keys(o.nodes))
		slices.Sort(ids)
		ctx.Respond(ids)
	case *siteSend:
		o.onSiteSend(ctx, m)
	case *siteOutcomes:
		ctx.Respond(o.siteOutcomeList(m))
	case *siteShares:
		o.onSiteShares(ctx, m)
	}
}

func (o *Org) onSiteSend(ctx actor.Context, m *siteSend) {
	now := o.cfg.Clock.Now()
	nodes := slices.Sorted(maps.Keys(m.payloads))
	out := make([]SiteNodeOutcome, 0, len(nodes))
	for _, n := range nodes {
		id := m.base + n
		oc := SiteNodeOutcome{Node: n, CommandID: id, At: now}
		o.sites.put(oc)
		ctx.Send(o.node(ctx, n), &enqueueCommand{commandID: id, actor: m.actor, issuedAt: now, control: m.payloads[n]})
		out = append(out, oc)
	}
	o.log.Info("site command sent", slog.String("site", m.site), slog.String("command", m.base), slog.Int("nodes", len(nodes)))
	ctx.Respond(out)
}

func (o *Org) siteOutcomeList(m *siteOutcomes) []SiteNodeOutcome {
	var out []SiteNodeOutcome
	last := map[string]int{}
	for _, id := range o.sites.order {
		oc := o.sites.outcomes[id]
		if !strings.HasPrefix(id, m.prefix) {
			continue
		}
		if i, ok := last[oc.Node]; ok && m.latest {
			out[i] = oc
			continue
		}
		last[oc.Node] = len(out)
		out = append(out, oc)
	}
	return out
}

func (o *Org) onSiteShares(ctx actor.Context, m *siteShares) {
	in := map[string]bool{}
	for _, n := range m.nodes {
		in[n] = true
	}
	shares := map[string][]string{}
	if len(m.minerIDs) == 0 {
		for id, d := range o.devices {
			if n := d.device.GetNodeId(); in[n] {
				shares[n] = append(shares[n], id)
			}
		}
		ctx.Respond(shares)
		return
	}
	var unknown []string
	for _, id := range m.minerIDs {
		d, ok := o.devices[id]
		if !ok || !in[d.device.GetNodeId()] {
			unknown = append(unknown, id)
			continue
		}
		shares[d.device.GetNodeId()] = append(shares[d.device.GetNodeId()], id)
	}
	if len(unknown) > 0 {
		ctx.Respond(fmt.Errorf("%w: not at this site: %s", ErrUnknownMiner, strings.Join(unknown[:min(len(unknown), 5)], ", ")))
		return
	}
	ctx.Respond(shares)
}

// siteOutcome folds a node's ack or final report of a site command into the book.
func (o *Org) siteOutcome(m *controlOutcome) {
	oc, ok := o.sites.outcomes[m.commandID]
	if !ok {
		oc = SiteNodeOutcome{Node: m.node, CommandID: m.commandID}
	}
	now := o.cfg.Clock.Now()
	switch {
	case m.report != nil && m.report.GetDone():
		for _, r := range m.report.GetResults() {
			oc.Code, oc.Message, oc.At = ResultCodeName(r.GetCode()), r.GetMessage(), now
		}
	case m.ack != nil && (oc.Code == "" || IsFinalResult(m.ack.GetCode())):
		oc.Code, oc.Message, oc.At = ResultCodeName(m.ack.GetCode()), m.ack.GetMessage(), now
	default:
		return
	}
	o.sites.put(oc)
	if oc.Code != ResultCodeName(pb.ResultCode_RESULT_CODE_SUCCEEDED) && oc.Code != ResultCodeName(pb.ResultCode_RESULT_CODE_RUNNING) {
		o.log.Warn("node did not apply a site command", slog.String("node", m.node), slog.String("command", m.commandID),
			slog.String("code", oc.Code), slog.String("message", oc.Message))
	}
}

// isSiteCommand reports whether a control command id is a site command's.
func isSiteCommand(id string) bool {
	return strings.HasPrefix(id, sitePolicyCmdPrefix) || strings.HasPrefix(id, curtailCmdPrefix)
}

// saveCurtail keeps the newest curtailment status a node reported.
func (o *Org) saveCurtail(node string, st *pb.CurtailStatus) {
	if st == nil {
		return
	}
	s, ok := o.cfg.Store.(store.Sites)
	if !ok {
		return
	}
	if err := s.PutCurtailStatus(node, st); err != nil {
		o.log.Error("keep a node's curtailment status", slog.String("node", node), slog.Any("err", err))
	}
}
