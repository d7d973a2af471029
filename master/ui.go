package master

import (
	"fmt"
	"net/http"
	"sync/atomic"

	"github.com/kiln-build/kiln/builders"
	"github.com/kiln-build/kiln/master/api"
	"github.com/kiln-build/kiln/master/metrics"
	"github.com/kiln-build/kiln/master/state"
	"github.com/kiln-build/kiln/master/web"
)

// ui is what the master serves people and monitoring besides the API's
// backend: the status pages, /metrics, and the users who may act.
type ui struct {
	src     *webSource
	metrics *metrics.Metrics
	public  bool
	access  atomic.Pointer[access]
}

// access is the users and the pages made for them, swapped together when
// the configured users change.
type access struct {
	users map[string]web.User
	pages http.Handler
}

// webUsers resolves the config's users; a token reference that cannot be
// read stops the master rather than leaving that user locked out silently.
func webUsers(cfgUsers []builders.User, configPath string) (map[string]web.User, error) {
	users := make(map[string]web.User, len(cfgUsers))
	for _, u := range cfgUsers {
		wu := web.User{Name: u.Name, PasswordHash: u.PasswordHash}
		if u.Token != "" {
			tok, err := ReadSecret(u.Token, configPath)
			if err != nil {
				return nil, fmt.Errorf("user %s token: %w", u.Name, err)
			}
			wu.Token = tok
		}
		users[u.Name] = wu
	}
	return users, nil
}

// mountHTTP puts the API, the pages and /metrics on the master's mux.
// /hooks/ and /repos/ are left to the webhook intake and the repositories.
func (m *Master) mountHTTP() error {
	m.ui.src = &webSource{m: m}
	m.ui.public = m.cfg.Master.PublicPages == nil || *m.cfg.Master.PublicPages
	if err := m.setUsers(m.cfg.Users, m.o.ConfigPath); err != nil {
		return err
	}
	api.Register(m.mux, m, m.authorize, m.log)
	m.mux.Handle("GET /metrics", m.metricsHandler())
	pages := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.ui.access.Load().pages.ServeHTTP(w, r)
	})
	m.mux.Handle("/", pages)
	// A /repos/ subtree (the published repositories) would otherwise
	// redirect the repositories page to itself with a slash.
	m.mux.Handle("/repos", pages)
	return nil
}

// setUsers makes users the ones who may log in and act, in the pages and the
// API. A config reload that changes the users calls it again; the pages are
// made anew, so their sessions end and everyone logs in again.
func (m *Master) setUsers(users []builders.User, configPath string) error {
	resolved, err := webUsers(users, configPath)
	if err != nil {
		return err
	}
	list := make([]web.User, 0, len(resolved))
	for _, u := range resolved {
		list = append(list, u)
	}
	pages := web.New(web.Options{Source: m.ui.src, Actions: m.ui.src, Users: list, PublicPages: m.ui.public, Title: "Kiln", Logger: m.log})
	m.ui.access.Store(&access{users: resolved, pages: pages})
	return nil
}

// authorize is the API's Authorizer: actions need a user's bearer token;
// reads are anonymous unless the pages are private.
func (m *Master) authorize(r *http.Request, action string) (string, error) {
	name, sent, ok := web.BearerUser(m.ui.access.Load().users, r)
	switch {
	case sent && !ok:
		return "", fmt.Errorf("%s: the bearer token names no user: %w", action, api.ErrUnauthenticated)
	case ok:
		return name, nil
	case action == api.ActionRead && m.ui.public:
		return "", nil
	}
	return "", fmt.Errorf("%s needs a user's token (Authorization: Bearer TOKEN): %w", action, api.ErrUnauthenticated)
}

// metricsHandler refreshes the gauges that are cheaper to read at scrape
// time than to track on every change, then serves the registry.
func (m *Master) metricsHandler() http.Handler {
	h := m.ui.metrics.Handler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.ui.metrics.SetQueueLength(m.node.FSM.QueueLength())
		connected := 0
		for _, w := range m.sched.Workers() {
			if w.Connected {
				connected++
			}
		}
		m.ui.metrics.SetWorkers(connected)
		h.ServeHTTP(w, r)
	})
}

// applied counts what the leader's committed commands did.
func (m *Master) applied(outs []state.Outcome) {
	for _, o := range outs {
		for _, st := range o.Finished {
			m.ui.metrics.BuildFinished(st)
		}
		if o.Dispatched {
			m.ui.metrics.ObserveDispatch(o.DispatchWait)
		}
	}
}

// Builders lists builders with their latest build (API).
func (m *Master) Builders(f api.BuilderFilter) ([]api.BuilderStatus, int) {
	return m.ui.src.Builders(f)
}

// Changes lists changes, newest first (API).
func (m *Master) Changes(f api.ChangeFilter) ([]*state.Change, int) {
	return m.node.FSM.Changes(f.Component, f.Offset, f.Limit)
}
