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
	"reflect"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/master/api"
	"github.com/kiln-build/kiln/protocol"
)

// backend answers from a fixed set of builds and records what it was asked.
type backend struct {
	builds   map[int64]*api.Build
	filter   api.BuildFilter
	builders api.BuilderFilter
	changes  api.ChangeFilter
	forced   api.ForceRequest
	user     string
	failure  error
}

func (b *backend) Force(ctx context.Context, r api.ForceRequest) (*api.ForceResult, error) {
	b.forced, b.user = r, api.User(ctx)
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
func (b *backend) Builds(f api.BuildFilter) ([]*api.Build, int) {
	b.filter = f
	return nil, 0
}
func (b *backend) Build(id int64) (*api.Build, error) {
	if x, ok := b.builds[id]; ok {
		return x, nil
	}
	return nil, fmt.Errorf("build %d: %w", id, api.ErrNotFound)
}
func (b *backend) Builders(f api.BuilderFilter) ([]api.BuilderStatus, int) {
	b.builders = f
	return nil, 0
}
func (b *backend) Change(id int64) (*api.Change, error) { return nil, api.ErrNotFound }
func (b *backend) Changes(f api.ChangeFilter) ([]*api.Change, int) {
	b.changes = f
	return nil, 0
}
func (b *backend) Workers() []api.Worker          { return nil }
func (b *backend) ConfigStatus() api.ConfigStatus { return api.ConfigStatus{Source: "farm.yaml"} }
func (b *backend) Pollers() []api.Poller          { return nil }
func (b *backend) Explain(id int64) (*api.Explanation, error) {
	if _, err := b.Build(id); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("%w: this master is not the leader", api.ErrUnavailable)
}
func (b *backend) Log(_ context.Context, id int64, _ bool, fn func(protocol.LogChunk) error) error {
	return fn(protocol.LogChunk{Lines: []string{"line one", "line two"}})
}
func (b *backend) Artifact(context.Context, int64, string) (io.ReadCloser, api.Artifact, error) {
	return nil, api.Artifact{}, api.ErrNotFound
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
	be := &backend{builds: map[int64]*api.Build{7: {ID: 7, Status: protocol.StatusSuccess}}}
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
		{"POST", "/api/v1/force", `{"component":"x"}`, fmt.Errorf("apply: %w: not the raft leader", api.ErrUnavailable), 503, "not the raft leader"},
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
		{"POST", "/api/v1/builds/7/cancel", "", fmt.Errorf("cancel: %w: build already finished", api.ErrConflict), 409, "already finished"},
		{"GET", "/api/v1/requests/7/explain", "", nil, 503, "not the leader"},
		{"GET", "/api/v1/requests/9/explain", "", nil, 404, "not found"},
		{"GET", "/api/v1/nothing", "", nil, 404, "no API route"},
		{"GET", "/api/v1/builders?status=never", "", nil, 200, `"builders"`},
		{"GET", "/api/v1/builders?status=late", "", nil, 400, "status"},
		{"GET", "/api/v1/builders?arch=arm64", "", nil, 400, `unknown query parameter \"arch\"`},
		{"GET", "/api/v1/builds/7/steps", "", nil, 200, "[]"},
		{"GET", "/api/v1/builds/8/steps", "", nil, 404, "not found"},
		{"GET", "/api/v1/builds/7?x=1", "", nil, 400, `unknown query parameter \"x\"`},
		{"GET", "/api/v1/workers?all=1", "", nil, 400, `unknown query parameter \"all\"`},
		{"GET", "/api/v1/changes?limit=x", "", nil, 400, "limit"},
		{"GET", "/api/v1/changes?since=3", "", nil, 400, `unknown query parameter \"since\"`},
		{"GET", "/api/v1/changes", "", nil, 200, `"total"`},
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
	for _, path := range []string{
		"/api/v1/builds?component=libx&target=debian/bookworm/amd64&status=failure&worker=w1&limit=5&offset=10&buildset=4",
		"/api/v1/builders?component=libx&target=debian/bookworm/amd64&status=failure&limit=5&offset=10",
		"/api/v1/changes?component=libx&limit=5&offset=10",
	} {
		if code, body := do(t, srv, "GET", path, ""); code != 200 {
			t.Fatalf("GET %s: HTTP %d %s", path, code, body)
		}
	}
	want := api.BuildFilter{Component: "libx", Target: "debian/bookworm/amd64", Status: "failure", Worker: "w1", Limit: 5, Offset: 10, Buildset: 4}
	if !reflect.DeepEqual(be.filter, want) {
		t.Errorf("filter = %+v, want %+v", be.filter, want)
	}
	if want := (api.BuilderFilter{Component: "libx", Target: "debian/bookworm/amd64", Status: "failure", Limit: 5, Offset: 10}); be.builders != want {
		t.Errorf("builder filter = %+v, want %+v", be.builders, want)
	}
	if want := (api.ChangeFilter{Component: "libx", Limit: 5, Offset: 10}); be.changes != want {
		t.Errorf("change filter = %+v, want %+v", be.changes, want)
	}
}

func TestAuthorizer(t *testing.T) {
	be := &backend{builds: map[int64]*api.Build{7: {ID: 7}}}
	var asked []string
	srv := serve(be, func(r *http.Request, action string) (string, error) {
		asked = append(asked, action)
		switch tok := r.Header.Get("Authorization"); {
		case action == api.ActionRead:
			return "", nil
		case tok == "":
			return "", fmt.Errorf("%s: %w", action, api.ErrUnauthenticated)
		case tok == "Bearer good":
			return "ann", nil
		}
		return "", fmt.Errorf("%s needs another user: %w", action, api.ErrForbidden)
	})
	defer srv.Close()
	actions := []struct{ method, path string }{{"POST", "/api/v1/force"}, {"POST", "/api/v1/builds/7/cancel"}, {"POST", "/api/v1/builds/7/rebuild"}}
	for _, tc := range []struct {
		auth    string
		code    int
		mention string
	}{
		{"", http.StatusUnauthorized, "authentication required"},
		{"Bearer other", http.StatusForbidden, "needs another user"},
	} {
		for _, p := range actions {
			req, _ := http.NewRequest(p.method, srv.URL+p.path, strings.NewReader(`{"component":"x"}`))
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.code || !strings.Contains(string(body), tc.mention) {
				t.Errorf("%s %s with %q: HTTP %d %q, want %d", p.method, p.path, tc.auth, resp.StatusCode, body, tc.code)
			}
			if tc.code == http.StatusUnauthorized && resp.Header.Get("WWW-Authenticate") == "" {
				t.Errorf("%s %s: 401 without WWW-Authenticate", p.method, p.path)
			}
		}
	}
	if be.forced.Component != "" {
		t.Error("a refused force reached the backend")
	}
	req, _ := http.NewRequest("POST", srv.URL+"/api/v1/force", strings.NewReader(`{"component":"x"}`))
	req.Header.Set("Authorization", "Bearer good")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || be.user != "ann" {
		t.Errorf("force with a good token: HTTP %d, backend saw user %q", resp.StatusCode, be.user)
	}
	if code, _ := do(t, srv, "GET", "/api/v1/builds/7", ""); code != 200 {
		t.Errorf("anonymous read allowed by the authorizer: HTTP %d", code)
	}
	if asked[len(asked)-1] != api.ActionRead {
		t.Errorf("a GET asked the authorizer for %q, want %q", asked[len(asked)-1], api.ActionRead)
	}
}
