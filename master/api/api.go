// Package api is the master's REST API under /api/v1. It registers its
// routes on a caller's http.ServeMux, so the web UI and webhooks can share
// one router, and reaches the farm only through the Backend interface.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/kiln-build/kiln/master/sched"
	"github.com/kiln-build/kiln/master/state"
	"github.com/kiln-build/kiln/protocol"
)

// Errors a Backend returns for the API to map onto status codes.
var (
	ErrUnknownComponent = errors.New("unknown component")
	ErrInvalid          = errors.New("invalid request")
)

// ForceRequest is the body of POST /api/v1/force. Component may be
// COMPONENT@TARGET to build one target only.
type ForceRequest struct {
	Component string `json:"component"`
	Target    string `json:"target,omitempty"`
	Rev       string `json:"rev,omitempty"`
}

// ForceResult names what a force (or rebuild) created.
type ForceResult struct {
	Change   int64   `json:"change"`
	Buildset int64   `json:"buildset"`
	Builds   []int64 `json:"builds"`
}

// BuildDetail is a build with the change that caused it.
type BuildDetail struct {
	*state.Build
	Change *state.Change `json:"change_record,omitempty"`
}

// BuildList is a page of builds.
type BuildList struct {
	Builds []*state.Build `json:"builds"`
	Total  int            `json:"total"`
}

// Backend is what the API needs from the master.
type Backend interface {
	Force(ctx context.Context, r ForceRequest) (*ForceResult, error)
	Rebuild(ctx context.Context, build int64) (*ForceResult, error)
	Cancel(ctx context.Context, build int64) error
	Builds(f state.Filter) ([]*state.Build, int)
	Build(id int64) (*state.Build, error)
	Change(id int64) (*state.Change, error)
	Changes(limit int) []*state.Change
	Workers() []sched.WorkerStatus
	Explain(id int64) (*sched.Explanation, error)
	// Log calls fn with the build's log chunks in order; with follow it
	// keeps going until the build has ended and its log is drained.
	Log(ctx context.Context, build int64, follow bool, fn func(protocol.LogChunk) error) error
	// Artifact opens a stored artifact of a build.
	Artifact(ctx context.Context, build int64, name string) (io.ReadCloser, protocol.Artifact, error)
}

// Authorizer decides whether a request may perform an action ("force",
// "cancel", "rebuild"). Nil allows everything; the web issue plugs users in.
type Authorizer func(r *http.Request, action string) error

// ErrForbidden is what an Authorizer returns to refuse.
var ErrForbidden = errors.New("forbidden")

type handler struct {
	b    Backend
	auth Authorizer
	log  *slog.Logger
}

// Register adds the API routes to mux.
func Register(mux *http.ServeMux, b Backend, auth Authorizer, log *slog.Logger) {
	if log == nil {
		log = slog.Default()
	}
	h := &handler{b: b, auth: auth, log: log.With("component", "api")}
	mux.HandleFunc("POST /api/v1/force", h.action("force", h.force))
	mux.HandleFunc("GET /api/v1/builds", h.builds)
	mux.HandleFunc("GET /api/v1/builds/{id}", h.build)
	mux.HandleFunc("GET /api/v1/builds/{id}/log", h.logs)
	mux.HandleFunc("GET /api/v1/builds/{id}/artifacts/{name...}", h.artifact)
	mux.HandleFunc("POST /api/v1/builds/{id}/cancel", h.action("cancel", h.cancel))
	mux.HandleFunc("POST /api/v1/builds/{id}/rebuild", h.action("rebuild", h.rebuild))
	mux.HandleFunc("GET /api/v1/workers", h.workers)
	mux.HandleFunc("GET /api/v1/requests/{id}/explain", h.explain)
	mux.HandleFunc("GET /api/v1/changes", h.changes)
	mux.HandleFunc("/api/v1/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no API route %s %s", r.Method, r.URL.Path))
	})
}

func (h *handler) action(name string, next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if h.auth != nil {
			if err := h.auth(r, name); err != nil {
				writeError(w, http.StatusForbidden, err.Error())
				return
			}
		}
		next(w, r)
	}
}

// Error is the body of every error response.
type Error struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, Error{Error: msg})
}

// fail maps a backend error onto a status code.
func (h *handler) fail(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, state.ErrNotFound), errors.Is(err, ErrUnknownComponent):
		code = http.StatusNotFound
	case errors.Is(err, ErrInvalid):
		code = http.StatusBadRequest
	case errors.Is(err, state.ErrFinished):
		code = http.StatusConflict
	case errors.Is(err, state.ErrNotLeader), errors.Is(err, sched.ErrNotLeading):
		code = http.StatusServiceUnavailable
	}
	if code == http.StatusInternalServerError {
		h.log.Error("API request failed", "err", err)
	}
	writeError(w, code, err.Error())
}

func pathID(w http.ResponseWriter, r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("bad id %q: want a positive number", r.PathValue("id")))
		return 0, false
	}
	return id, true
}

func (h *handler) force(w http.ResponseWriter, r *http.Request) {
	var req ForceRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "bad force request body: "+err.Error())
		return
	}
	res, err := h.b.Force(r.Context(), req)
	if err != nil {
		h.fail(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, res)
}

func queryInt(w http.ResponseWriter, r *http.Request, name string, def int) (int, bool) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, true
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 0 {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("bad query parameter %s=%q: want a number ≥ 0", name, s))
		return 0, false
	}
	return v, true
}

var knownStatuses = map[string]bool{
	protocol.StatusPending: true, protocol.StatusRunning: true, protocol.StatusSuccess: true, protocol.StatusFailure: true,
	protocol.StatusException: true, protocol.StatusCancelled: true, protocol.StatusLost: true,
	protocol.StatusSuperseded: true, protocol.StatusSkipped: true,
}

func (h *handler) builds(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	for k := range q {
		switch k {
		case "component", "target", "status", "limit", "offset", "buildset":
		default:
			writeError(w, http.StatusBadRequest, fmt.Sprintf("unknown query parameter %q (want component, target, status, buildset, limit, offset)", k))
			return
		}
	}
	f := state.Filter{Component: q.Get("component"), Target: q.Get("target"), Status: q.Get("status")}
	if f.Status != "" && !knownStatuses[f.Status] {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("bad query parameter status=%q", f.Status))
		return
	}
	var ok bool
	if f.Limit, ok = queryInt(w, r, "limit", 100); !ok {
		return
	}
	if f.Offset, ok = queryInt(w, r, "offset", 0); !ok {
		return
	}
	bs, ok2 := queryInt(w, r, "buildset", 0)
	if !ok2 {
		return
	}
	f.Buildset = int64(bs)
	list, total := h.b.Builds(f)
	if list == nil {
		list = []*state.Build{}
	}
	writeJSON(w, http.StatusOK, BuildList{Builds: list, Total: total})
}

func (h *handler) build(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	b, err := h.b.Build(id)
	if err != nil {
		h.fail(w, err)
		return
	}
	d := BuildDetail{Build: b}
	if c, err := h.b.Change(b.Change); err == nil {
		d.Change = c
	}
	writeJSON(w, http.StatusOK, d)
}

func (h *handler) logs(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	if _, err := h.b.Build(id); err != nil {
		h.fail(w, err)
		return
	}
	follow := r.URL.Query().Get("follow")
	if follow != "" && follow != "0" && follow != "1" && follow != "true" && follow != "false" {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("bad query parameter follow=%q: want 1 or 0", follow))
		return
	}
	if follow == "1" || follow == "true" {
		h.followLog(w, r, id)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	err := h.b.Log(r.Context(), id, false, func(c protocol.LogChunk) error {
		for _, l := range c.Lines {
			if _, err := io.WriteString(w, l+"\n"); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		h.log.Warn("log read failed", "build", id, "err", err)
	}
}

// followLog streams server-sent events: one "log" event per line, then an
// "end" event carrying the build's final status.
func (h *handler) followLog(w http.ResponseWriter, r *http.Request, id int64) {
	fl, _ := w.(http.Flusher)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	err := h.b.Log(r.Context(), id, true, func(c protocol.LogChunk) error {
		for _, l := range c.Lines {
			if _, err := fmt.Fprintf(w, "event: log\ndata: %s\n\n", l); err != nil {
				return err
			}
		}
		if fl != nil {
			fl.Flush()
		}
		return nil
	})
	if err != nil {
		h.log.Warn("log follow ended", "build", id, "err", err)
		return
	}
	status := ""
	if b, err := h.b.Build(id); err == nil {
		status = b.Status
	}
	fmt.Fprintf(w, "event: end\ndata: %s\n\n", status)
	if fl != nil {
		fl.Flush()
	}
}

func (h *handler) artifact(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	rc, a, err := h.b.Artifact(r.Context(), id, r.PathValue("name"))
	if err != nil {
		h.fail(w, err)
		return
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(a.Size, 10))
	w.Header().Set("X-Checksum-Sha256", a.SHA256)
	if _, err := io.Copy(w, rc); err != nil {
		h.log.Warn("artifact download interrupted", "build", id, "artifact", a.Name, "err", err)
	}
}

func (h *handler) cancel(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	if err := h.b.Cancel(r.Context(), id); err != nil {
		h.fail(w, err)
		return
	}
	b, err := h.b.Build(id)
	if err != nil {
		h.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, b)
}

func (h *handler) rebuild(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	res, err := h.b.Rebuild(r.Context(), id)
	if err != nil {
		h.fail(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, res)
}

func (h *handler) workers(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, h.b.Workers())
}

func (h *handler) explain(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	e, err := h.b.Explain(id)
	if err != nil {
		h.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, e)
}

func (h *handler) changes(w http.ResponseWriter, r *http.Request) {
	limit, ok := queryInt(w, r, "limit", 100)
	if !ok {
		return
	}
	list := h.b.Changes(limit)
	if list == nil {
		list = []*state.Change{}
	}
	writeJSON(w, http.StatusOK, list)
}
