package localui

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// pages holds one parsed template set per page (layout + the page's "content").
type pages struct{ t map[string]*template.Template }

var pageNames = []string{"login", "miners", "miner", "commands", "curtailment", "error"}

func newPages() (*pages, error) {
	base, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html")
	if err != nil {
		return nil, fmt.Errorf("local UI templates: %w", err)
	}
	p := &pages{t: map[string]*template.Template{}}
	for _, n := range pageNames {
		t, err := template.Must(base.Clone()).ParseFS(templateFS, "templates/"+n+".html")
		if err != nil {
			return nil, fmt.Errorf("local UI template %s: %w", n, err)
		}
		p.t[n] = t
	}
	return p, nil
}

func staticHandler() http.Handler {
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		panic(err) // the embed pattern guarantees the directory
	}
	files := http.StripPrefix("/static/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r) // no directory listings
			return
		}
		w.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
}

var funcs = template.FuncMap{
	"ths": func(v float64) string {
		if v == 0 {
			return "–"
		}
		return strconv.FormatFloat(v, 'f', 2, 64) + " TH/s"
	},
	"celsius": func(v float64) string {
		if v == 0 {
			return "–"
		}
		return strconv.FormatFloat(v, 'f', 1, 64) + " °C"
	},
	"watts": func(v float64) string {
		if v == 0 {
			return "–"
		}
		return strconv.FormatFloat(math.Round(v), 'f', 0, 64) + " W"
	},
	"when":     when,
	"ago":      ago,
	"uptime":   uptime,
	"pathpart": url.PathEscape,
	"join":     strings.Join,
	"first": func(ids []string, n int) []string {
		if len(ids) > n {
			return ids[:n]
		}
		return ids
	},
	"more": func(ids []string, n int) int { return max(len(ids)-n, 0) },
	"notOK": func(rs []ResultView) []ResultView {
		var out []ResultView
		for _, r := range rs {
			if r.Code != "succeeded" && r.Code != "duplicate" {
				out = append(out, r)
			}
			if len(out) == 50 {
				break
			}
		}
		return out
	},
	"actions": LocalActions,
	"minW":    func() int { return MinPowerTargetW },
	"maxW":    func() int { return MaxPowerTargetW },
}

func when(t time.Time) string {
	if t.IsZero() {
		return "–"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

func ago(t, now time.Time) string {
	if t.IsZero() {
		return ""
	}
	d := now.Sub(t)
	switch {
	case d < 0:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh %dm ago", int(d.Hours()), int(d.Minutes())%60)
	default:
		return fmt.Sprintf("%dd ago", int(d.Hours()/24))
	}
}

func uptime(s int64) string {
	if s <= 0 {
		return "–"
	}
	d := time.Duration(s) * time.Second
	if d >= 24*time.Hour {
		return fmt.Sprintf("%dd %dh", int(d.Hours()/24), int(d.Hours())%24)
	}
	return fmt.Sprintf("%dh %dm", int(d.Hours()), int(d.Minutes())%60)
}

// LinkBanner is the banner's sentence for a link state at now.
func LinkBanner(l LinkView, now time.Time) string {
	since := ""
	if !l.Since.IsZero() {
		since = " since " + when(l.Since) + " (" + ago(l.Since, now) + ")"
	}
	switch {
	case !l.Configured:
		return "No cloud link configured: this node runs standalone."
	case l.Up:
		return "Cloud link up" + since + "."
	default:
		msg := "Cloud link DOWN" + since + ": local-degraded mode. Commands run here and reach the cloud's audit when the link returns."
		if l.LastError != "" {
			msg += " Last error: " + l.LastError
		}
		return msg
	}
}

func linkState(l LinkView) string {
	switch {
	case !l.Configured:
		return "none"
	case l.Up:
		return "up"
	default:
		return "down"
	}
}

// pageData is what every template gets.
type pageData struct {
	Title     string
	NodeID    string
	User      string
	CSRF      string
	Now       time.Time
	RefreshMs int64
	Link      LinkView
	LinkState string
	LinkText  string
	Flash     string
	Error     string
	Next      string
	NoAdmin   bool
	Status    int

	// Miner list.
	Miners      []MinerView
	Total       int
	Filtered    int
	StateCounts []stateCount
	State, Q    string
	Page, Pages int
	PrevURL     string
	NextURL     string
	ReturnTo    string
	IdemKey     string
	RefreshURL  string

	// One miner.
	Miner MinerView

	// Command log.
	Commands []CommandView

	// Curtailment.
	Curtailed int
	// CurtailEvent is the curtailment event panel (curtail_page.go); nil when the node runs no events.
	CurtailEvent *curtailEventPanel
}

type stateCount struct {
	State string
	N     int
}

func (s *Server) base(r *http.Request, sess *session, title string) pageData {
	now := s.clock.Now()
	ctx, cancel := s.siteCtx(r)
	defer cancel()
	l := s.site.Link(ctx)
	d := pageData{
		Title: title, NodeID: s.cfg.NodeID, Now: now, RefreshMs: s.cfg.RefreshInterval.Milliseconds(),
		Link: l, LinkState: linkState(l), LinkText: LinkBanner(l, now), IdemKey: randomToken(),
	}
	if sess != nil {
		d.User, d.CSRF = sess.user, sess.csrf
	}
	q := r.URL.Query()
	if id := q.Get("submitted"); id != "" {
		d.Flash = "Command " + truncate(id, MaxIDLength) + " submitted."
	}
	return d
}

func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name string, d pageData) {
	t := s.pages.t[name]
	if d.NodeID == "" {
		d.NodeID = s.cfg.NodeID
	}
	d.Status = status
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout.html", d); err != nil {
		s.log.Error("render local UI page", slog.String("page", name), slog.Any("error", err))
		http.Error(w, "internal error rendering the page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(buf.Bytes())
	}
}

func (s *Server) renderError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	_, sess := s.sessionOf(r)
	d := pageData{Title: http.StatusText(status), Error: msg, Now: s.clock.Now()}
	if sess != nil {
		d.User, d.CSRF = sess.user, sess.csrf
	}
	s.render(w, r, status, "error", d)
}

// siteError maps a Site error to a status and an operator message.
func siteError(what string, err error) (int, string) {
	switch {
	case errors.Is(err, ErrInvalidRequest):
		return http.StatusBadRequest, err.Error()
	case errors.Is(err, ErrUnknownMiner):
		return http.StatusNotFound, err.Error()
	case errors.Is(err, ErrIdempotencyKeyReused), errors.Is(err, ErrRefused):
		return http.StatusConflict, err.Error()
	default:
		return http.StatusBadGateway, "The node could not " + what + ": " + err.Error()
	}
}

// filterMiners applies the list's state and id filters.
func filterMiners(all []MinerView, state, q string) []MinerView {
	if state == "" && q == "" {
		return all
	}
	q = strings.ToLower(q)
	out := make([]MinerView, 0, len(all))
	for _, m := range all {
		if (state == "" || m.State == state) && (q == "" || strings.Contains(strings.ToLower(m.ID), q)) {
			out = append(out, m)
		}
	}
	return out
}

func countStates(all []MinerView) []stateCount {
	n := map[string]int{}
	for _, m := range all {
		n[m.State]++
	}
	var out []stateCount
	for _, st := range StateNames {
		if n[st] > 0 {
			out = append(out, stateCount{st, n[st]})
		}
	}
	return out
}

func (s *Server) getMiners(w http.ResponseWriter, r *http.Request, sess *session) {
	d := s.base(r, sess, "Miners")
	q := r.URL.Query()
	d.State, d.Q = q.Get("state"), strings.TrimSpace(q.Get("q"))
	if _, err := parseStateName(d.State); d.State != "" && err != nil {
		d.State = ""
	}
	ctx, cancel := s.siteCtx(r)
	defer cancel()
	all, err := s.site.Miners(ctx)
	status := http.StatusOK
	if err != nil {
		status, d.Error = siteError("list its miners", err)
	}
	d.Total, d.StateCounts = len(all), countStates(all)
	filtered := filterMiners(all, d.State, d.Q)
	d.Filtered = len(filtered)
	size := s.cfg.PageSize
	d.Pages = max(1, (len(filtered)+size-1)/size)
	d.Page = min(max(atoiDefault(q.Get("page"), 1), 1), d.Pages)
	lo := (d.Page - 1) * size
	d.Miners = filtered[lo:min(lo+size, len(filtered))]
	pageURL := func(p int) string {
		v := url.Values{}
		if d.State != "" {
			v.Set("state", d.State)
		}
		if d.Q != "" {
			v.Set("q", d.Q)
		}
		if p > 1 {
			v.Set("page", strconv.Itoa(p))
		}
		if len(v) == 0 {
			return "/"
		}
		return "/?" + v.Encode()
	}
	if d.Page > 1 {
		d.PrevURL = pageURL(d.Page - 1)
	}
	if d.Page < d.Pages {
		d.NextURL = pageURL(d.Page + 1)
	}
	d.ReturnTo = pageURL(d.Page)
	rv := url.Values{}
	if d.State != "" {
		rv.Set("state", d.State)
	}
	if d.Q != "" {
		rv.Set("q", d.Q)
	}
	rv.Set("offset", strconv.Itoa(lo))
	rv.Set("limit", strconv.Itoa(size))
	d.RefreshURL = "/api/local/miners?" + rv.Encode()
	s.render(w, r, status, "miners", d)
}

func (s *Server) getMiner(w http.ResponseWriter, r *http.Request, sess *session) {
	id := r.PathValue("id")
	d := s.base(r, sess, "Miner "+truncate(id, 40))
	ctx, cancel := s.siteCtx(r)
	defer cancel()
	m, err := s.site.Miner(ctx, id)
	if err != nil {
		status, msg := siteError("read the miner", err)
		s.renderError(w, r, status, msg)
		return
	}
	d.Miner = m
	d.ReturnTo = "/miners/" + url.PathEscape(id)
	d.RefreshURL = "/api/local/miners/" + url.PathEscape(id)
	s.render(w, r, http.StatusOK, "miner", d)
}

func (s *Server) getCommands(w http.ResponseWriter, r *http.Request, sess *session) {
	d := s.base(r, sess, "Local command log")
	ctx, cancel := s.siteCtx(r)
	defer cancel()
	cmds, err := s.site.Commands(ctx, s.cfg.CommandLogLimit)
	status := http.StatusOK
	if err != nil {
		status, d.Error = siteError("read the local command log", err)
	}
	d.Commands = cmds
	s.render(w, r, status, "commands", d)
}

func (s *Server) getCurtailment(w http.ResponseWriter, r *http.Request, sess *session) {
	d := s.base(r, sess, "Site curtailment")
	ctx, cancel := s.siteCtx(r)
	defer cancel()
	all, err := s.site.Miners(ctx)
	status := http.StatusOK
	if err != nil {
		status, d.Error = siteError("list its miners", err)
	}
	d.Total = len(all)
	for _, m := range all {
		if m.State == "curtailed" {
			d.Curtailed++
		}
	}
	s.addEventPanel(r, &d)
	s.render(w, r, status, "curtailment", d)
}

// formRequest reads the bulk/per-miner command form.
func formRequest(f url.Values, sess *session, client string) (LocalCommandRequest, error) {
	action, err := ParseAction(f.Get("action"))
	if err != nil {
		return LocalCommandRequest{}, err
	}
	req := LocalCommandRequest{Action: action, IdempotencyKey: f.Get("idempotency_key"),
		Actor: "local:" + sess.user, ClientAddr: client}
	switch f.Get("scope") {
	case "all":
		req.All = true
	case "selected", "":
		seen := map[string]bool{}
		for _, id := range f["miner_id"] {
			if !seen[id] {
				seen[id] = true
				req.MinerIDs = append(req.MinerIDs, id)
			}
		}
	default:
		return req, fmt.Errorf("scope must be selected or all: %w", ErrInvalidRequest)
	}
	if action == pb.Action_ACTION_SET_POWER_TARGET {
		v := strings.TrimSpace(f.Get("power_target_w"))
		if v == "" {
			return req, fmt.Errorf("enter a power target in watts: %w", ErrInvalidRequest)
		}
		w, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return req, fmt.Errorf("power target %q is not a number of watts: %w", truncate(v, 20), ErrInvalidRequest)
		}
		req.PowerTargetW = w
	}
	return req, req.Validate()
}

func (s *Server) postCommand(w http.ResponseWriter, r *http.Request, sess *session) {
	req, err := formRequest(r.PostForm, sess, r.RemoteAddr)
	name := ActionName(req.Action)
	if err != nil {
		s.m.command(name, "invalid")
		s.renderError(w, r, http.StatusBadRequest, "The command was not sent: "+err.Error())
		return
	}
	id, err := s.submit(r, req)
	if err != nil {
		status, msg := siteError("take the command", err)
		s.renderError(w, r, status, msg)
		return
	}
	http.Redirect(w, r, withQuery(r.PostForm.Get("return_to"), "submitted", id), http.StatusSeeOther)
}

// submit hands a validated request to the Site and logs it.
func (s *Server) submit(r *http.Request, req LocalCommandRequest) (string, error) {
	name := ActionName(req.Action)
	ctx, cancel := s.siteCtx(r)
	defer cancel()
	id, err := s.site.Submit(ctx, req)
	attrs := []any{slog.String("action", name), slog.Int("miners", len(req.MinerIDs)), slog.Bool("all", req.All),
		slog.String("idempotency_key", req.IdempotencyKey), slog.String("actor", req.Actor), slog.String("client", req.ClientAddr)}
	if err != nil {
		result := "error"
		if errors.Is(err, ErrRefused) || errors.Is(err, ErrIdempotencyKeyReused) || errors.Is(err, ErrInvalidRequest) {
			result = "refused"
		}
		s.m.command(name, result)
		s.log.Warn("local command not taken", append(attrs, slog.Any("error", err))...)
		return "", err
	}
	s.m.command(name, "ok")
	s.log.Info("local command submitted", append(attrs, slog.String("command", id))...)
	return id, nil
}

func (s *Server) postCurtailment(w http.ResponseWriter, r *http.Request, sess *session) {
	req := CurtailmentRequest{IdempotencyKey: r.PostForm.Get("idempotency_key"), Actor: "local:" + sess.user, ClientAddr: r.RemoteAddr}
	switch op := r.PostForm.Get("op"); op {
	case "start":
		req.Start = true
	case "stop":
	case "event-start", "event-stop":
		s.postCurtailEvent(w, r, sess, op)
		return
	default:
		s.renderError(w, r, http.StatusBadRequest, "Curtailment can only be started or stopped.")
		return
	}
	id, err := s.curtail(r, req)
	if err != nil {
		status, msg := siteError("change site curtailment", err)
		s.renderError(w, r, status, msg)
		return
	}
	http.Redirect(w, r, withQuery("/curtailment", "submitted", id), http.StatusSeeOther)
}

func (s *Server) curtail(r *http.Request, req CurtailmentRequest) (string, error) {
	name := "curtailment_stop"
	if req.Start {
		name = "curtailment_start"
	}
	if err := checkToken(req.IdempotencyKey); err != nil {
		s.m.command(name, "invalid")
		return "", fmt.Errorf("idempotency key: %v: %w", err, ErrInvalidRequest)
	}
	ctx, cancel := s.siteCtx(r)
	defer cancel()
	id, err := s.site.Curtailment(ctx, req)
	if err != nil {
		s.m.command(name, "error")
		s.log.Warn("site curtailment not taken", slog.Bool("start", req.Start), slog.String("actor", req.Actor), slog.Any("error", err))
		return "", err
	}
	s.m.command(name, "ok")
	s.log.Info("site curtailment submitted", slog.Bool("start", req.Start), slog.String("command", id),
		slog.String("actor", req.Actor), slog.String("client", req.ClientAddr))
	return id, nil
}

// stateOptions are the filter choices of the miner list.
func (d pageData) StateOptions() []string { return slices.Clone(StateNames) }
