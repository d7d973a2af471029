package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/master/api"
	"github.com/kiln-build/kiln/master/sched"
	"github.com/kiln-build/kiln/master/state"
	"github.com/kiln-build/kiln/protocol"
)

// backend answers from a fixed set of builds and records what it was asked.
type backend struct {
	builds  map[int64]*state.Build
	filter  state.Filter
	forced  api.ForceRequest
	failure error
}

func (b *backend) Force(_ context.Context, r api.ForceRequest) (*api.ForceResult, error) {
	b.forced = r
	if b.failure != nil {
		return nil, b.failure
	}
	return &api.ForceResult{Change: 1, Buildset: 2, Builds: []int64{3}}, nil
}
func (b *backend) Rebuild(context.Context, int64) (*api.ForceResult, error) { return nil, b.failure }
func (b *backend) Cancel(_ context.Context, id int64) error {
	if _, err := b.Build(id); err != nil {
		return err
	}
	return b.failure
}
func (b *backend) Builds(f state.Filter) ([]*state.Build, int) {
	b.filter = f
	return nil, 0
}
func (b *backend) Build(id int64) (*state.Build, error) {
	if x, ok := b.builds[id]; ok {
		return x, nil
	}
	return nil, fmt.Errorf("build %d: %w", id, state.ErrNotFound)
}
func (b *backend) Change(id int64) (*state.Change, error) { return nil, state.ErrNotFound }
func (b *backend) Changes(int) []*state.Change            { return nil }
func (b *backend) Workers() []sched.WorkerStatus          { return nil }
func (b *backend) Explain(id int64) (*sched.Explanation, error) {
	if _, err := b.Build(id); err != nil {
		return nil, err
	}
	return nil, sched.ErrNotLeading
}
func (b *backend) Log(_ context.Context, id int64, _ bool, fn func(protocol.LogChunk) error) error {
	return fn(protocol.LogChunk{Lines: []string{"line one", "line two"}})
}
func (b *backend) Artifact(context.Context, int64, string) (io.ReadCloser, protocol.Artifact, error) {
	return nil, protocol.Artifact{}, state.ErrNotFound
}

func serve(b *backend, auth api.Authorizer) *httptest.Server {
	mux := http.NewServeMux()
	api.Register(mux, b, auth, slog.New(slog.NewTextHandler(io.Discard, nil)))
	return httptest.NewServer(mux)
}

func do(t *testing.T, srv *httptest.Server, method, path, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestStatusCodesAndErrors(t *testing.T) {
	be := &backend{builds: map[int64]*state.Build{7: {ID: 7, Status: protocol.StatusSuccess}}}
	srv := serve(be, nil)
	defer srv.Close()
	for _, tc := range []struct {
		method, path, body string
		failure            error
		code               int
		mention            string
	}{
		{"POST", "/api/v1/force", `{"component":"libx"}`, nil, 201, `"builds"`},
		{"POST", "/api/v1/force", `{"component":"libx","colour":"red"}`, nil, 400, "colour"},
		{"POST", "/api/v1/force", `not json`, nil, 400, "bad force request"},
		{"POST", "/api/v1/force", `{"component":"nosuch"}`, fmt.Errorf("force nosuch: %w", api.ErrUnknownComponent), 404, "unknown component"},
		{"POST", "/api/v1/force", `{"component":"x"}`, fmt.Errorf("apply: %w", state.ErrNotLeader), 503, "not the raft leader"},
		{"POST", "/api/v1/force", `{"component":"x"}`, errors.New("disk on fire"), 500, "disk on fire"},
		{"GET", "/api/v1/builds/7", "", nil, 200, `"status": "success"`},
		{"GET", "/api/v1/builds/8", "", nil, 404, "build 8: not found"},
		{"GET", "/api/v1/builds/-1", "", nil, 400, "bad id"},
		{"GET", "/api/v1/builds?limit=-3", "", nil, 400, "limit"},
		{"GET", "/api/v1/builds?status=bogus", "", nil, 400, "status"},
		{"GET", "/api/v1/builds?sort=new", "", nil, 400, "unknown query parameter"},
		{"GET", "/api/v1/builds/7/log?follow=maybe", "", nil, 400, "follow"},
		{"GET", "/api/v1/builds/7/log", "", nil, 200, "line one\nline two\n"},
		{"GET", "/api/v1/builds/7/artifacts/dir/x.deb", "", nil, 404, "not found"},
		{"POST", "/api/v1/builds/7/cancel", "", fmt.Errorf("cancel: %w", state.ErrFinished), 409, "already finished"},
		{"GET", "/api/v1/requests/7/explain", "", nil, 503, "not the leader"},
		{"GET", "/api/v1/requests/9/explain", "", nil, 404, "not found"},
		{"GET", "/api/v1/nothing", "", nil, 404, "no API route"},
	} {
		be.failure = tc.failure
		code, body := do(t, srv, tc.method, tc.path, tc.body)
		if code != tc.code || !strings.Contains(body, tc.mention) {
			t.Errorf("%s %s: HTTP %d %q, want %d mentioning %q", tc.method, tc.path, code, body, tc.code, tc.mention)
		}
		if code >= 400 && !strings.HasSuffix(tc.path, "/log") {
			var e api.Error
			if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error == "" {
				t.Errorf("%s %s: error body %q is not {\"error\": ...}", tc.method, tc.path, body)
			}
		}
	}
}

func TestBuildFiltersReachTheBackend(t *testing.T) {
	be := &backend{}
	srv := serve(be, nil)
	defer srv.Close()
	if code, _ := do(t, srv, "GET", "/api/v1/builds?component=libx&target=debian/bookworm/amd64&status=failure&limit=5&offset=10&buildset=4", ""); code != 200 {
		t.Fatalf("HTTP %d", code)
	}
	want := state.Filter{Component: "libx", Target: "debian/bookworm/amd64", Status: "failure", Limit: 5, Offset: 10, Buildset: 4}
	if be.filter != want {
		t.Errorf("filter = %+v, want %+v", be.filter, want)
	}
}

func TestAuthorizerGuardsActionsOnly(t *testing.T) {
	be := &backend{builds: map[int64]*state.Build{7: {ID: 7}}}
	var asked []string
	srv := serve(be, func(_ *http.Request, action string) error {
		asked = append(asked, action)
		return fmt.Errorf("%s needs a login: %w", action, api.ErrForbidden)
	})
	defer srv.Close()
	for _, p := range []struct{ method, path string }{{"POST", "/api/v1/force"}, {"POST", "/api/v1/builds/7/cancel"}, {"POST", "/api/v1/builds/7/rebuild"}} {
		if code, body := do(t, srv, p.method, p.path, `{"component":"x"}`); code != http.StatusForbidden || !strings.Contains(body, "needs a login") {
			t.Errorf("%s %s: HTTP %d %q, want 403", p.method, p.path, code, body)
		}
	}
	if code, _ := do(t, srv, "GET", "/api/v1/builds/7", ""); code != 200 {
		t.Errorf("reading needs no authorization: HTTP %d", code)
	}
	if strings.Join(asked, ",") != "force,cancel,rebuild" {
		t.Errorf("authorizer asked for %v", asked)
	}
	if be.forced.Component != "" {
		t.Error("a refused force reached the backend")
	}
}
