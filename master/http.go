package master

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"

	"github.com/kiln-build/kiln/builders"
	"github.com/kiln-build/kiln/master/api"
	"github.com/kiln-build/kiln/master/confsrc"
	"github.com/kiln-build/kiln/master/web"
)

// webAccess is who may act, in the pages and the API.
type webAccess struct {
	public bool
	access atomic.Pointer[access]
}

// access is the users and the pages made for them, swapped together when
// the configured users change.
type access struct {
	users map[string]web.User
	pages http.Handler
}

// mountHTTP puts everything the master serves on its mux: the API, the
// pages, /metrics, webhooks under /hooks/ and the repositories under
// /repos/.
func (m *Master) mountHTTP(cfg *builders.Config) error {
	m.web.public = cfg.Master.PublicPages == nil || *cfg.Master.PublicPages
	if err := m.setUsers(cfg.Users, m.o.ConfigPath); err != nil {
		return err
	}
	api.Register(m.mux, m.view, m.authorize, m.log)
	m.mux.Handle("GET /metrics", m.metricsHandler())
	pages := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.web.access.Load().pages.ServeHTTP(w, r)
	})
	m.mux.Handle("/", pages)
	// A /repos/ subtree (the published repositories) would otherwise
	// redirect the repositories page to itself with a slash.
	m.mux.Handle("/repos", pages)
	m.mux.Handle("/repos/", http.StripPrefix("/repos", m.publish.Handler()))
	m.mux.Handle("/hooks/", m.intake)
	return nil
}

// setUsers makes users the ones who may log in and act, in the pages and the
// API. A config reload that changes the users calls it again; the pages are
// made anew, so their sessions end and everyone logs in again.
func (m *Master) setUsers(users []builders.User, configPath string) error {
	tokens, err := confsrc.Tokens(users, configPath)
	if err != nil {
		return err
	}
	resolved := make(map[string]web.User, len(users))
	list := make([]web.User, 0, len(users))
	for _, u := range users {
		wu := web.User{Name: u.Name, PasswordHash: u.PasswordHash, Token: tokens[u.Name]}
		resolved[u.Name] = wu
		list = append(list, wu)
	}
	pages := m.view.Pages()
	handler := web.New(web.Options{Source: pages, Actions: pages, Users: list, PublicPages: m.web.public, Title: "Kiln", Logger: m.log})
	m.web.access.Store(&access{users: resolved, pages: handler})
	return nil
}

// authorize is the API's Authorizer: actions need a user's bearer token;
// reads are anonymous unless the pages are private.
func (m *Master) authorize(r *http.Request, action string) (string, error) {
	name, sent, ok := web.BearerUser(m.web.access.Load().users, r)
	switch {
	case sent && !ok:
		return "", fmt.Errorf("%s: the bearer token names no user: %w", action, api.ErrUnauthenticated)
	case ok:
		return name, nil
	case action == api.ActionRead && m.web.public:
		return "", nil
	}
	return "", fmt.Errorf("%s needs a user's token (Authorization: Bearer TOKEN): %w", action, api.ErrUnauthenticated)
}

// metricsHandler refreshes the gauges that are cheaper to read at scrape
// time than to track on every change, then serves the registry.
func (m *Master) metricsHandler() http.Handler {
	h := m.metrics.Handler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.metrics.SetQueueLength(m.node.FSM.QueueLength())
		connected := 0
		for _, w := range m.sched.Workers() {
			if w.Connected {
				connected++
			}
		}
		m.metrics.SetWorkers(connected)
		h.ServeHTTP(w, r)
	})
}

// countEvents feeds the metrics from the state's event feed until ctx ends.
func (m *Master) countEvents(ctx context.Context) {
	sub := m.node.Events().Subscribe()
	defer sub.Close()
	for {
		select {
		case <-ctx.Done():
			return
		case <-sub.Ready():
		}
		for _, batch := range sub.Next() {
			for _, o := range batch {
				for _, e := range o.Finished {
					m.metrics.BuildFinished(e.Status)
				}
				if o.Dispatched {
					m.metrics.ObserveDispatch(o.DispatchWait)
				}
			}
		}
	}
}
