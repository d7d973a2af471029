package view

import (
	"context"
	"net/url"
	"strings"

	"github.com/kiln-build/kiln/master/api"
	"github.com/kiln-build/kiln/master/state"
	"github.com/kiln-build/kiln/master/web"
	"github.com/kiln-build/kiln/protocol"
)

func (v *View) Builds(f api.BuildFilter) ([]*api.Build, int) {
	list, total := v.o.Node.FSM.Builds(state.Filter{Component: f.Component, Target: f.Target, Status: f.Status, Worker: f.Worker,
		Buildset: f.Buildset, Limit: f.Limit, Offset: f.Offset})
	return each(list, v.finished.of), total
}

func (v *View) Build(id int64) (*api.Build, error) {
	b, err := v.o.Node.FSM.Build(id)
	if err != nil {
		return nil, apiError(err)
	}
	return v.finished.of(b), nil
}

func (v *View) Change(id int64) (*api.Change, error) {
	c, err := v.o.Node.FSM.Change(id)
	if err != nil {
		return nil, apiError(err)
	}
	return apiChange(c), nil
}

func (v *View) Changes(f api.ChangeFilter) ([]*api.Change, int) {
	list, total := v.o.Node.FSM.Changes(f.Component, f.Offset, f.Limit)
	return each(list, apiChange), total
}

func (v *View) Explain(id int64) (*api.Explanation, error) {
	e, err := v.o.Scheduler.Explain(id)
	if err != nil {
		return nil, apiError(err)
	}
	x := api.Explanation(*e)
	return &x, nil
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

func (s *Pages) Changes(_ context.Context, q web.ChangeQuery) (web.ChangePage, error) {
	list, total := s.v.o.Node.FSM.Changes(q.Component, q.Offset, q.Limit)
	page := web.ChangePage{Total: total, Changes: make([]web.Change, len(list))}
	for i, c := range list {
		page.Changes[i] = webChange(c)
	}
	return page, nil
}
