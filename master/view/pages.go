package view

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/kiln-build/kiln/builders"
	"github.com/kiln-build/kiln/master/api"
	"github.com/kiln-build/kiln/master/confsrc"
	"github.com/kiln-build/kiln/master/state"
	"github.com/kiln-build/kiln/master/web"
	"github.com/kiln-build/kiln/protocol"
)

// Pages is the read model and the actions of the status pages. The API's
// builder list reads the same grid layout, so the page and the API cannot
// disagree on what a builder shows.
type Pages struct{ v *View }

// Pages returns the status pages' source and actions.
func (v *View) Pages() *Pages { return &Pages{v: v} }

var (
	_ web.Source  = (*Pages)(nil)
	_ web.Actions = (*Pages)(nil)
)

// gridLayout is the matrix arranged as the grid: components by name ×
// targets. It depends on the configuration only, so it is built once per
// matrix and the grid's per-view cost is one index lookup per builder.
type gridLayout struct {
	mx      *builders.Matrix
	targets []web.Target
	comps   []string
	// cells[r*len(targets)+t] is the builder of row r, target t, or "".
	cells []string
	// list is every builder in grid order, with its index into cells.
	list  []gridBuilder
	names []string // list's builder names, for state.Latest
}

type gridBuilder struct {
	name, component, target string
	cell                    int
}

func newGridLayout(mx *builders.Matrix) *gridLayout {
	l := &gridLayout{mx: mx}
	col := make(map[string]int, len(mx.Targets))
	for i, t := range mx.Targets {
		l.targets = append(l.targets, web.Target{Distro: t.Distro, Version: t.Version, Arch: t.Arch})
		col[t.String()] = i
	}
	row := map[string]int{}
	for _, b := range mx.Builders {
		if _, ok := row[b.Component.Name]; !ok {
			row[b.Component.Name] = 0
			l.comps = append(l.comps, b.Component.Name)
		}
	}
	slices.Sort(l.comps)
	for i, c := range l.comps {
		row[c] = i
	}
	l.cells = make([]string, len(l.comps)*len(l.targets))
	for _, b := range mx.Builders {
		i := row[b.Component.Name]*len(l.targets) + col[b.Target.String()]
		l.cells[i] = b.Name
	}
	for i, name := range l.cells {
		if name == "" {
			continue
		}
		b, _ := mx.Builder(name)
		l.list = append(l.list, gridBuilder{name: name, component: b.Component.Name, target: b.Target.String(), cell: i})
		l.names = append(l.names, name)
	}
	return l
}

// grid returns the layout of the current matrix and the latest build of
// each builder in it, indexed like layout.list.
func (v *View) grid() (*gridLayout, []state.BuildRef) {
	mx := v.o.Matrix()
	l := v.layout.Load()
	if l == nil || l.mx != mx {
		// A config reload swaps the matrix; racing views build equal layouts.
		l = newGridLayout(mx)
		v.layout.Store(l)
	}
	return l, v.o.Node.FSM.Latest(l.names)
}

// Builders lists configured builders with their latest build (the grid, as
// the API serves it), in grid order.
func (v *View) Builders(f api.BuilderFilter) ([]api.BuilderStatus, int) {
	l, latest := v.grid()
	var out []api.BuilderStatus
	total := 0
	for i, b := range l.list {
		ref := latest[i]
		if (f.Component != "" && b.component != f.Component) || (f.Target != "" && b.target != f.Target) {
			continue
		}
		if f.Status != "" && ref.Status != f.Status && (f.Status != api.StatusNever || ref.ID != 0) {
			continue
		}
		total++
		if total <= f.Offset || (f.Limit > 0 && len(out) >= f.Limit) {
			continue
		}
		bs := api.BuilderStatus{Name: b.name, Component: b.component, Target: b.target}
		if ref.ID != 0 {
			bs.Latest = &api.BuildRef{ID: ref.ID, Status: ref.Status}
		}
		out = append(out, bs)
	}
	return out, total
}

func (s *Pages) Grid(context.Context) (web.Grid, error) {
	l, latest := s.v.grid()
	cells := make([]web.GridCell, len(l.cells))
	for i, b := range l.list {
		cells[b.cell] = web.GridCell{Builder: b.name, Build: latest[i].ID, Status: web.Status(latest[i].Status)}
	}
	g := web.Grid{Targets: l.targets, Rows: make([]web.GridRow, len(l.comps))}
	n := len(l.targets)
	for r, c := range l.comps {
		g.Rows[r] = web.GridRow{Component: c, Cells: cells[r*n : (r+1)*n : (r+1)*n]}
	}
	return g, nil
}

func (s *Pages) Builds(_ context.Context, q web.BuildQuery) (web.BuildPage, error) {
	f := state.Filter{Component: q.Component, Target: q.Target, Worker: q.Worker, Offset: q.Offset, Limit: q.Limit}
	for _, st := range q.Statuses {
		f.Statuses = append(f.Statuses, string(st))
	}
	list, total := s.v.o.Node.FSM.Builds(f)
	page := web.BuildPage{Total: total, Builds: make([]web.BuildSummary, len(list))}
	for i, b := range list {
		page.Builds[i] = s.summary(b)
	}
	return page, nil
}

// summary is a build as lists show it; a pending build carries the
// scheduler's answer to why it waits.
func (s *Pages) summary(b *state.Build) web.BuildSummary {
	sum := web.BuildSummary{ID: b.ID, Builder: b.Builder, Component: b.Component, Target: b.Target, Revision: b.Revision,
		Status: web.Status(b.Status), Summary: b.Summary, Worker: b.Worker, Created: b.Created, Started: b.Started, Ended: b.Ended}
	if b.Status == protocol.StatusPending {
		if e, err := s.v.o.Scheduler.Explain(b.ID); err == nil {
			sum.Waiting = e.Reason
		}
	}
	return sum
}

// notFound makes a state lookup failure one the pages answer with 404.
func notFound(err error) error {
	if errors.Is(err, state.ErrNotFound) {
		return fmt.Errorf("%w: %w", web.ErrNotFound, err)
	}
	return err
}

func (s *Pages) Build(_ context.Context, id int64) (web.BuildDetail, error) {
	b, err := s.v.o.Node.FSM.Build(id)
	if err != nil {
		return web.BuildDetail{}, notFound(err)
	}
	d := web.BuildDetail{BuildSummary: s.summary(b), Properties: b.Properties}
	if c, err := s.v.o.Node.FSM.Change(b.Change); err == nil {
		d.Change = webChange(c)
	}
	// The change records what its sender said; the checkout knows what the
	// commit says, which forced and polled changes carry no other way.
	if a := b.Properties["commit_author"]; a != "" && d.Change.Author == "" {
		d.Change.Author = a
	}
	if msg := b.Properties["commit_message"]; msg != "" && d.Change.Message == "" {
		d.Change.Message = msg
	}
	for _, st := range b.Steps {
		d.Steps = append(d.Steps, web.Step{Name: st.Name, Status: web.Status(st.Status), Summary: st.Summary, Started: st.Started, Ended: st.Ended})
	}
	for _, a := range b.Attempts {
		started := a.Started
		if started.IsZero() {
			started = a.Assigned
		}
		d.Attempts = append(d.Attempts, web.Attempt{N: a.N, Worker: a.Worker, Status: web.Status(a.Status), Reason: a.Reason, Started: started, Ended: a.Ended})
	}
	for _, a := range b.Artifacts {
		d.Artifacts = append(d.Artifacts, web.Artifact{Name: a.Name, Size: a.Size, SHA256: a.SHA256, URL: artifactURL(id, a.Name)})
	}
	return d, nil
}

// artifactURL is the API route that downloads an artifact; names may hold
// slashes, each segment is escaped.
func artifactURL(id int64, name string) string {
	segs := strings.Split(name, "/")
	for i, p := range segs {
		segs[i] = url.PathEscape(p)
	}
	return "/api/v1/builds/" + state.FormatID(id) + "/artifacts/" + strings.Join(segs, "/")
}

func webChange(c *state.Change) web.Change {
	wc := web.Change{ID: c.ID, Component: c.Component, Revision: c.Revision, Source: c.Reason, When: c.Created}
	if b, ok := strings.CutPrefix(c.Ref, "refs/heads/"); ok {
		wc.Branch = b
	} else {
		wc.Branch = c.Ref
	}
	if c.Source != nil && c.Source.User != "" && !strings.Contains(c.Reason, " by "+c.Source.User) {
		wc.Source += " by " + c.Source.User
	}
	return wc
}

func (s *Pages) FollowLog(ctx context.Context, id int64, from int64) (<-chan web.LogLine, error) {
	b, err := s.v.o.Node.FSM.Build(id)
	if err != nil {
		return nil, notFound(err)
	}
	names := map[int]string{}
	for _, st := range b.Steps {
		names[st.Index] = st.Name
	}
	stepName := func(i int) string {
		if n, ok := names[i]; ok {
			return n
		}
		// A step that started after the stream was opened.
		if b, err := s.v.o.Node.FSM.Build(id); err == nil {
			for _, st := range b.Steps {
				names[st.Index] = st.Name
			}
		}
		return names[i]
	}
	ch := make(chan web.LogLine, 256)
	go func() {
		defer close(ch)
		// Seq counts lines from the start of the build's log, across
		// attempts, so a resumed stream reads history again and skips
		// what the viewer has: logs are per build and small next to the
		// cost of a per-line index.
		var seq int64
		err := s.v.Log(ctx, id, true, func(c protocol.LogChunk) error {
			step := stepName(c.Step)
			for _, text := range c.Lines {
				seq++
				if seq-1 < from {
					continue
				}
				select {
				case ch <- web.LogLine{Seq: seq - 1, Step: step, Text: text}:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			return nil
		})
		if err != nil && !errors.Is(err, context.Canceled) {
			s.v.o.Logger.Warn("web: log stream ended early", "build", id, "err", err)
		}
	}()
	return ch, nil
}

func (s *Pages) Workers(context.Context) ([]web.Worker, error) {
	ws := s.v.o.Scheduler.Workers()
	out := make([]web.Worker, len(ws))
	for i, w := range ws {
		out[i] = web.Worker{Name: w.Name, Tags: w.Tags, Slots: w.Slots, Running: w.Running, LastHeartbeat: w.LastSeen, Connected: w.Connected, Version: w.KilnVersion}
	}
	return out, nil
}

func (s *Pages) Changes(_ context.Context, q web.ChangeQuery) (web.ChangePage, error) {
	list, total := s.v.o.Node.FSM.Changes(q.Component, q.Offset, q.Limit)
	page := web.ChangePage{Total: total, Changes: make([]web.Change, len(list))}
	for i, c := range list {
		page.Changes[i] = webChange(c)
	}
	return page, nil
}

// Repositories is what each channel publishes per target.
func (s *Pages) Repositories(ctx context.Context) ([]web.Repository, error) {
	if !s.v.o.Publisher.Enabled() {
		return nil, nil
	}
	list, err := s.v.Repos(ctx, "", "")
	if err != nil {
		return nil, err
	}
	out := make([]web.Repository, 0, len(list))
	for _, r := range list {
		wr := web.Repository{Channel: r.Channel, Target: r.Target, Published: r.Published}
		for _, p := range r.Packages {
			wr.Packages = append(wr.Packages, web.Package{Name: p.Name, Version: p.Version, Arch: p.Arch})
		}
		out = append(out, wr)
	}
	return out, nil
}

// ConfigStatus names the configuration the farm runs and, while the newest
// one is refused, why, for the pages' banner.
func (s *Pages) ConfigStatus(context.Context) (web.ConfigStatus, error) {
	st := s.v.o.ConfigStatus()
	ws := web.ConfigStatus{Commit: st.Commit, LoadedAt: st.LoadedAt}
	if e := st.Error; e != nil {
		ws.Error = "commit " + confsrc.ShortVersion(e.Commit) + ": " + e.Message
		ws.File, ws.Line = e.File, e.Line
	} else if f := st.Fetch; f != nil && f.Failures > 0 {
		ws.Error = fmt.Sprintf("config repository unreachable (%d failures, running %s): %s", f.Failures, confsrc.ShortVersion(st.Commit), f.LastError)
	}
	return ws, nil
}

// Pollers reads what GET /api/v1/pollers shows, so the page and kiln ctl
// report the same pollers.
func (s *Pages) Pollers(context.Context) ([]web.Poller, error) {
	ps := s.v.Pollers()
	out := make([]web.Poller, len(ps))
	for i, p := range ps {
		out[i] = web.Poller{URL: p.URL, Components: p.Components, Refs: p.Refs, LastPoll: p.LastPoll, NextPoll: p.NextPoll,
			LastChange: p.LastChange, LastError: p.LastError, Failures: p.Failures}
	}
	return out, nil
}

// actionError maps the master's refusals onto the pages' 404 and 400.
func actionError(err error) error {
	switch {
	case errors.Is(err, api.ErrUnknownComponent), errors.Is(err, api.ErrNotFound):
		return fmt.Errorf("%w: %w", web.ErrNotFound, err)
	case errors.Is(err, api.ErrInvalid), errors.Is(err, api.ErrConflict):
		return fmt.Errorf("%w: %w", web.ErrInvalid, err)
	}
	return err
}

func (s *Pages) Force(ctx context.Context, user, component, target, rev string) (web.Forced, error) {
	res, err := s.v.Force(api.WithUser(ctx, user), api.ForceRequest{Component: component, Target: target, Rev: rev})
	if err != nil {
		return web.Forced{}, actionError(err)
	}
	return web.Forced{Change: res.Change, Builds: res.Builds}, nil
}

func (s *Pages) Rebuild(ctx context.Context, user string, id int64) (int64, error) {
	res, err := s.v.Rebuild(api.WithUser(ctx, user), id)
	if err != nil {
		return 0, actionError(err)
	}
	if len(res.Builds) == 0 {
		return 0, fmt.Errorf("rebuild of build %d created no build: %w", id, web.ErrInvalid)
	}
	return res.Builds[0], nil
}

func (s *Pages) Cancel(ctx context.Context, user string, id int64) error {
	s.v.o.Logger.Info("cancel requested", "build", id, "user", user)
	return actionError(s.v.Cancel(api.WithUser(ctx, user), id))
}
