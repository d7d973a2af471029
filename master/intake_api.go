package master

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/kiln-build/kiln/master/api"
	"github.com/kiln-build/kiln/master/poller"
)

// PollerStatus is one poller as the API shows it.
type PollerStatus struct {
	URL        string    `json:"url"`
	Key        string    `json:"key"`
	Components []string  `json:"components"`
	Refs       int       `json:"refs"`
	LastPoll   time.Time `json:"last_poll,omitzero"`
	NextPoll   time.Time `json:"next_poll,omitzero"`
	LastChange time.Time `json:"last_change,omitzero"`
	LastError  string    `json:"last_error,omitempty"`
	Failures   int       `json:"failures"`
	Polls      int       `json:"polls"`
}

func pollerStatus(s poller.Status) PollerStatus {
	return PollerStatus{URL: s.URL, Key: s.Key, Components: s.Components, Refs: s.Refs, LastPoll: s.LastPoll, NextPoll: s.NextPoll,
		LastChange: s.LastChange, LastError: s.LastError, Failures: s.Failures, Polls: s.Polls}
}

// registerIntakeAPI adds GET /api/v1/config and GET /api/v1/pollers, read
// like the rest of the API.
func (m *Master) registerIntakeAPI() {
	read := func(fn func() any) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if _, err := m.authorize(r, api.ActionRead); err != nil {
				code := http.StatusForbidden
				if errors.Is(err, api.ErrUnauthenticated) {
					code = http.StatusUnauthorized
				}
				writeJSON(w, code, api.Error{Error: err.Error()})
				return
			}
			writeJSON(w, http.StatusOK, fn())
		}
	}
	m.mux.HandleFunc("GET /api/v1/config", read(func() any { return m.ConfigStatus() }))
	m.mux.HandleFunc("GET /api/v1/pollers", read(func() any {
		ps := m.Pollers()
		out := make([]PollerStatus, len(ps))
		for i, p := range ps {
			out[i] = pollerStatus(p)
		}
		return out
	}))
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
