package web

import (
	"cmp"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/kiln-build/kiln/protocol"
)

type buildsView struct {
	Filters  BuildQuery
	Status   Status
	Statuses []Status
	// Running and Pending are shown above the history when no status is
	// asked for; Recent is the paginated list either way.
	Running, Pending BuildPage
	Recent           []BuildSummary
	Pager            pager
}

// liveCap bounds the running and pending sections; a farm with more than
// this many of either is better served by the status filter's pagination.
const liveCap = 200

// finishedStatuses is the history section's filter: every final status, so a
// new one shows up in the history without being listed here.
var finishedStatuses = func() []Status {
	out := make([]Status, len(protocol.FinalStatuses))
	for i, s := range protocol.FinalStatuses {
		out[i] = Status(s)
	}
	return out
}()

func (s *server) buildsPage(w http.ResponseWriter, r *http.Request) {
	p := params{q: r.URL.Query()}
	q := BuildQuery{Component: p.str("component"), Target: p.str("target"), Worker: p.str("worker")}
	st := p.status("status")
	q.Offset, q.Limit = p.offsetLimit()
	if p.err != nil {
		s.fail(w, r, http.StatusBadRequest, p.err.Error())
		return
	}
	v := buildsView{Filters: q, Status: st, Statuses: Statuses}
	if st == "" {
		for _, sec := range []struct {
			into *BuildPage
			st   Status
		}{{&v.Running, StatusRunning}, {&v.Pending, StatusPending}} {
			lq := q
			lq.Statuses, lq.Offset, lq.Limit = []Status{sec.st}, 0, liveCap
			page, err := s.src.Builds(r.Context(), lq)
			if err != nil {
				s.sourceError(w, r, "the builds", err)
				return
			}
			*sec.into = page
		}
		q.Statuses = finishedStatuses
	} else {
		q.Statuses = []Status{st}
	}
	page, err := s.src.Builds(r.Context(), q)
	if err != nil {
		s.sourceError(w, r, "the builds", err)
		return
	}
	v.Recent = page.Builds
	v.Pager = newPager(r.URL.Query(), q.Offset, q.Limit, len(page.Builds), page.Total)
	s.render(w, r, http.StatusOK, "builds", "builds", v)
}

type buildView struct {
	BuildDetail
	Properties [][2]string
	Events     string
	CanForce   bool
}

func (s *server) buildPage(w http.ResponseWriter, r *http.Request) {
	id, err := buildID(r)
	if err != nil {
		s.sourceError(w, r, "build "+r.PathValue("id"), err)
		return
	}
	b, err := s.src.Build(r.Context(), id)
	if err != nil {
		s.sourceError(w, r, "build "+strconv.FormatInt(id, 10), err)
		return
	}
	v := buildView{BuildDetail: b, Events: "/builds/" + strconv.FormatInt(id, 10) + "/log/events", CanForce: s.actions != nil}
	for k, val := range b.Properties {
		v.Properties = append(v.Properties, [2]string{k, val})
	}
	slices.SortFunc(v.Properties, func(a, b [2]string) int { return strings.Compare(a[0], b[0]) })
	s.render(w, r, http.StatusOK, "build", "builds", v)
}

func (s *server) workersPage(w http.ResponseWriter, r *http.Request) {
	ws, err := s.src.Workers(r.Context())
	if err != nil {
		s.sourceError(w, r, "the workers", err)
		return
	}
	ws = slices.Clone(ws)
	// Lost workers first: they are what an operator has to act on.
	slices.SortFunc(ws, func(a, b Worker) int {
		if a.Connected != b.Connected {
			if !a.Connected {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Name, b.Name)
	})
	s.render(w, r, http.StatusOK, "workers", "workers", ws)
}

type changesView struct {
	Component string
	Changes   []Change
	Pager     pager
	Pollers   []Poller
}

func (s *server) changesPage(w http.ResponseWriter, r *http.Request) {
	p := params{q: r.URL.Query()}
	q := ChangeQuery{Component: p.str("component")}
	q.Offset, q.Limit = p.offsetLimit()
	if p.err != nil {
		s.fail(w, r, http.StatusBadRequest, p.err.Error())
		return
	}
	page, err := s.src.Changes(r.Context(), q)
	if err != nil {
		s.sourceError(w, r, "the changes", err)
		return
	}
	pollers, err := s.src.Pollers(r.Context())
	if err != nil {
		s.sourceError(w, r, "the pollers", err)
		return
	}
	// A component's page answers "why has its change not arrived", so only
	// the pollers that could bring it belong there.
	if q.Component != "" {
		pollers = slices.DeleteFunc(slices.Clone(pollers), func(p Poller) bool { return !slices.Contains(p.Components, q.Component) })
	}
	s.render(w, r, http.StatusOK, "changes", "changes", changesView{
		Component: q.Component,
		Changes:   page.Changes,
		Pager:     newPager(r.URL.Query(), q.Offset, q.Limit, len(page.Changes), page.Total),
		Pollers:   pollers,
	})
}

type reposView struct {
	Channels []channelView
}

type channelView struct {
	Channel string
	Repos   []Repository
}

func (s *server) reposPage(w http.ResponseWriter, r *http.Request) {
	repos, err := s.src.Repositories(r.Context())
	if err != nil {
		s.sourceError(w, r, "the repositories", err)
		return
	}
	repos = slices.Clone(repos)
	slices.SortStableFunc(repos, func(a, b Repository) int {
		return cmp.Or(cmp.Compare(a.Channel, b.Channel), cmp.Compare(a.Target, b.Target))
	})
	var v reposView
	for _, repo := range repos {
		if n := len(v.Channels); n == 0 || v.Channels[n-1].Channel != repo.Channel {
			v.Channels = append(v.Channels, channelView{Channel: repo.Channel})
		}
		c := &v.Channels[len(v.Channels)-1]
		c.Repos = append(c.Repos, repo)
	}
	s.render(w, r, http.StatusOK, "repos", "repos", v)
}

func (s *server) noActions(w http.ResponseWriter, r *http.Request) bool {
	if s.actions == nil {
		s.fail(w, r, http.StatusServiceUnavailable, "this master takes no actions from the web page")
		return true
	}
	return false
}

func (s *server) force(w http.ResponseWriter, r *http.Request, user string) {
	if s.noActions(w, r) {
		return
	}
	component := strings.TrimSpace(r.PostFormValue("component"))
	if component == "" {
		s.fail(w, r, http.StatusBadRequest, "bad form field component: empty")
		return
	}
	target, rev := strings.TrimSpace(r.PostFormValue("target")), strings.TrimSpace(r.PostFormValue("revision"))
	res, err := s.actions.Force(r.Context(), user, component, target, rev)
	if err != nil {
		s.sourceError(w, r, "component "+component, err)
		return
	}
	s.log.Info("web: force", "user", user, "component", component, "target", target, "revision", rev, "change", res.Change, "builds", len(res.Builds))
	dest := "/builds?" + url.Values{"component": {component}}.Encode()
	if len(res.Builds) == 1 {
		dest = "/builds/" + strconv.FormatInt(res.Builds[0], 10)
	}
	http.Redirect(w, r, dest, http.StatusSeeOther)
}

func (s *server) rebuild(w http.ResponseWriter, r *http.Request, user string) {
	if s.noActions(w, r) {
		return
	}
	id, err := buildID(r)
	if err == nil {
		var n int64
		n, err = s.actions.Rebuild(r.Context(), user, id)
		if err == nil {
			s.log.Info("web: rebuild", "user", user, "build", id, "new", n)
			http.Redirect(w, r, "/builds/"+strconv.FormatInt(n, 10), http.StatusSeeOther)
			return
		}
	}
	s.sourceError(w, r, "build "+r.PathValue("id"), err)
}

func (s *server) cancel(w http.ResponseWriter, r *http.Request, user string) {
	if s.noActions(w, r) {
		return
	}
	id, err := buildID(r)
	if err == nil {
		err = s.actions.Cancel(r.Context(), user, id)
		if err == nil {
			s.log.Info("web: cancel", "user", user, "build", id)
			http.Redirect(w, r, "/builds/"+strconv.FormatInt(id, 10), http.StatusSeeOther)
			return
		}
	}
	s.sourceError(w, r, "build "+r.PathValue("id"), err)
}
