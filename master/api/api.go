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
	"slices"
	"strconv"
	"strings"

	"github.com/kiln-build/kiln/protocol"
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
	*Build
	Change *Change `json:"change_record,omitempty"`
}

// BuildList is a page of builds.
type BuildList struct {
	Builds []*Build `json:"builds"`
	Total  int      `json:"total"`
}

// ChangeFilter selects changes; empty fields match all.
type ChangeFilter struct {
	Component string
	Limit     int
	Offset    int
}

// ChangeList is a page of changes.
type ChangeList struct {
	Changes []*Change `json:"changes"`
	Total   int       `json:"total"`
}

// BuilderFilter selects builders; Status matches their latest build
// ("never" for builders that never built).
type BuilderFilter struct {
	Component string
	Target    string
	Status    string
	Limit     int
	Offset    int
}

// BuilderStatus is a configured builder and its latest build, what one cell
// of the web page's grid shows.
type BuilderStatus struct {
	Name      string    `json:"name"`
	Component string    `json:"component"`
	Target    string    `json:"target"`
	Latest    *BuildRef `json:"latest,omitempty"`
}

// BuilderList is a page of builders.
type BuilderList struct {
	Builders []BuilderStatus `json:"builders"`
	Total    int             `json:"total"`
}

// StatusNever is the builder status filter for builders that never built.
const StatusNever = "never"

// Backend is what the API needs from the master.
type Backend interface {
	Force(ctx context.Context, r ForceRequest) (*ForceResult, error)
	Rebuild(ctx context.Context, build int64) (*ForceResult, error)
	Cancel(ctx context.Context, build int64) error
	Builds(f BuildFilter) ([]*Build, int)
	Build(id int64) (*Build, error)
	Builders(f BuilderFilter) ([]BuilderStatus, int)
	Change(id int64) (*Change, error)
	Changes(f ChangeFilter) ([]*Change, int)
	Workers() []Worker
	Explain(id int64) (*Explanation, error)
	// Log calls fn with the build's log chunks in order; with follow it
	// keeps going until the build has ended and its log is drained.
	Log(ctx context.Context, build int64, follow bool, fn func(protocol.LogChunk) error) error
	// Artifact opens a stored artifact of a build.
	Artifact(ctx context.Context, build int64, name string) (io.ReadCloser, Artifact, error)
	ConfigStatus() ConfigStatus
	Pollers() []Poller
	RepoBackend
}

// Authorizer decides whether a request may perform an action: ActionRead
// for every GET, "force", "cancel" or "rebuild". It returns the user the
// request speaks for ("" for anonymous reads). Nil allows everything.
type Authorizer func(r *http.Request, action string) (user string, err error)

// ActionRead is what an Authorizer is asked for every GET route.
const ActionRead = "read"

// What an Authorizer returns to refuse: ErrUnauthenticated when the request
// proves no identity (401), ErrForbidden when the identity may not act (403).
var (
	ErrUnauthenticated = errors.New("authentication required")
	ErrForbidden       = errors.New("forbidden")
)

type userKey struct{}

// User is the authenticated user an action runs for, "" when none.
func User(ctx context.Context) string {
	u, _ := ctx.Value(userKey{}).(string)
	return u
}

// WithUser records who a request speaks for, for Backend methods to read
// with User.
func WithUser(ctx context.Context, user string) context.Context {
	return context.WithValue(ctx, userKey{}, user)
}

type handler struct {
	b      Backend
	auth   Authorizer
	log    *slog.Logger
	routes []string // patterns registered, "METHOD /path"
	// finished holds the JSON of ended builds for the build lists.
	finished finishedJSON
}

// Register adds the API routes to mux and returns their patterns
// ("METHOD /path"), which the OpenAPI document must describe.
func Register(mux *http.ServeMux, b Backend, auth Authorizer, log *slog.Logger) []string {
	if log == nil {
		log = slog.Default()
	}
	h := &handler{b: b, auth: auth, log: log.With("component", "api")}
	h.handle(mux, "POST /api/v1/force", "force", h.force)
	h.handle(mux, "GET /api/v1/builders", ActionRead, h.builders)
	h.handle(mux, "GET /api/v1/builds", ActionRead, h.builds)
	h.handle(mux, "GET /api/v1/builds/{id}", ActionRead, h.build)
	h.handle(mux, "GET /api/v1/builds/{id}/steps", ActionRead, h.steps)
	h.handle(mux, "GET /api/v1/builds/{id}/log", ActionRead, h.logs)
	h.handle(mux, "GET /api/v1/builds/{id}/artifacts/{name...}", ActionRead, h.artifact)
	h.handle(mux, "POST /api/v1/builds/{id}/cancel", "cancel", h.cancel)
	h.handle(mux, "POST /api/v1/builds/{id}/rebuild", "rebuild", h.rebuild)
	h.handle(mux, "GET /api/v1/workers", ActionRead, h.workers)
	h.handle(mux, "GET /api/v1/requests/{id}/explain", ActionRead, h.explain)
	h.handle(mux, "GET /api/v1/changes", ActionRead, h.changes)
	h.handle(mux, "GET /api/v1/config", ActionRead, h.config)
	h.handle(mux, "GET /api/v1/pollers", ActionRead, h.pollers)
	h.handle(mux, "GET /api/v1/openapi.json", ActionRead, serveOpenAPI)
	h.registerRepos(mux)
	mux.HandleFunc("/api/v1/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no API route %s %s", r.Method, r.URL.Path))
	})
	return h.routes
}

// handle registers a route behind the authorizer.
func (h *handler) handle(mux *http.ServeMux, pattern, action string, next http.HandlerFunc) {
	h.routes = append(h.routes, pattern)
	mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if h.auth != nil {
			user, err := h.auth(r, action)
			switch {
			case errors.Is(err, ErrUnauthenticated):
				w.Header().Set("WWW-Authenticate", `Bearer realm="kiln"`)
				writeError(w, http.StatusUnauthorized, err.Error())
				return
			case err != nil:
				writeError(w, http.StatusForbidden, err.Error())
				return
			}
			r = r.WithContext(WithUser(r.Context(), user))
		}
		next(w, r)
	})
}

// onlyParams answers 400 naming the first query parameter the route does
// not take: a typo must not silently widen a filter.
func onlyParams(w http.ResponseWriter, r *http.Request, names ...string) bool {
	for k := range r.URL.Query() {
		if !slices.Contains(names, k) {
			want := "none"
			if len(names) > 0 {
				want = strings.Join(names, ", ")
			}
			writeError(w, http.StatusBadRequest, fmt.Sprintf("unknown query parameter %q (want %s)", k, want))
			return false
		}
	}
	return true
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
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrUnknownComponent):
		code = http.StatusNotFound
	case errors.Is(err, ErrInvalid):
		code = http.StatusBadRequest
	case errors.Is(err, ErrConflict):
		code = http.StatusConflict
	case errors.Is(err, ErrUnavailable):
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

func (h *handler) builds(w http.ResponseWriter, r *http.Request) {
	if !onlyParams(w, r, "component", "target", "status", "worker", "buildset", "limit", "offset") {
		return
	}
	q := r.URL.Query()
	f := BuildFilter{Component: q.Get("component"), Target: q.Get("target"), Status: q.Get("status"), Worker: q.Get("worker")}
	if f.Status != "" && !slices.Contains(protocol.Statuses, f.Status) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("bad query parameter status=%q", f.Status))
		return
	}
	var ok bool
	if f.Limit, f.Offset, ok = page(w, r); !ok {
		return
	}
	bs, ok2 := queryInt(w, r, "buildset", 0)
	if !ok2 {
		return
	}
	f.Buildset = int64(bs)
	list, total := h.b.Builds(f)
	if err := h.finished.writeBuildList(w, list, total); err != nil {
		h.log.Warn("build list not sent", "err", err)
	}
}

// page reads limit (default 100) and offset.
func page(w http.ResponseWriter, r *http.Request) (limit, offset int, ok bool) {
	if limit, ok = queryInt(w, r, "limit", 100); !ok {
		return 0, 0, false
	}
	offset, ok = queryInt(w, r, "offset", 0)
	return limit, offset, ok
}

func (h *handler) builders(w http.ResponseWriter, r *http.Request) {
	if !onlyParams(w, r, "component", "target", "status", "limit", "offset") {
		return
	}
	q := r.URL.Query()
	f := BuilderFilter{Component: q.Get("component"), Target: q.Get("target"), Status: q.Get("status")}
	if f.Status != "" && f.Status != StatusNever && !slices.Contains(protocol.Statuses, f.Status) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("bad query parameter status=%q (want a build status or %q)", f.Status, StatusNever))
		return
	}
	var ok bool
	if f.Limit, f.Offset, ok = page(w, r); !ok {
		return
	}
	list, total := h.b.Builders(f)
	if list == nil {
		list = []BuilderStatus{}
	}
	writeJSON(w, http.StatusOK, BuilderList{Builders: list, Total: total})
}

// lookup reads the {id} of a build route, answering 400 or 404 itself.
func (h *handler) lookup(w http.ResponseWriter, r *http.Request, params ...string) (*Build, bool) {
	if !onlyParams(w, r, params...) {
		return nil, false
	}
	id, ok := pathID(w, r)
	if !ok {
		return nil, false
	}
	b, err := h.b.Build(id)
	if err != nil {
		h.fail(w, err)
		return nil, false
	}
	return b, true
}

func (h *handler) steps(w http.ResponseWriter, r *http.Request) {
	b, ok := h.lookup(w, r)
	if !ok {
		return
	}
	steps := b.Steps
	if steps == nil {
		steps = []Step{}
	}
	writeJSON(w, http.StatusOK, steps)
}

func (h *handler) build(w http.ResponseWriter, r *http.Request) {
	if !onlyParams(w, r) {
		return
	}
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
	b, ok := h.lookup(w, r, "follow")
	if !ok {
		return
	}
	id := b.ID
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
	if !onlyParams(w, r) {
		return
	}
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
	if !onlyParams(w, r) {
		return
	}
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
	if !onlyParams(w, r) {
		return
	}
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

func (h *handler) workers(w http.ResponseWriter, r *http.Request) {
	if !onlyParams(w, r) {
		return
	}
	writeJSON(w, http.StatusOK, h.b.Workers())
}

func (h *handler) explain(w http.ResponseWriter, r *http.Request) {
	if !onlyParams(w, r) {
		return
	}
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
	if !onlyParams(w, r, "component", "limit", "offset") {
		return
	}
	f := ChangeFilter{Component: r.URL.Query().Get("component")}
	var ok bool
	if f.Limit, f.Offset, ok = page(w, r); !ok {
		return
	}
	list, total := h.b.Changes(f)
	if list == nil {
		list = []*Change{}
	}
	writeJSON(w, http.StatusOK, ChangeList{Changes: list, Total: total})
}

func (h *handler) config(w http.ResponseWriter, r *http.Request) {
	if !onlyParams(w, r) {
		return
	}
	writeJSON(w, http.StatusOK, h.b.ConfigStatus())
}

func (h *handler) pollers(w http.ResponseWriter, r *http.Request) {
	if !onlyParams(w, r) {
		return
	}
	list := h.b.Pollers()
	if list == nil {
		list = []Poller{}
	}
	writeJSON(w, http.StatusOK, list)
}
