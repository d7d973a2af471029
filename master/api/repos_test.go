package api_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/master/api"
)

// The test backend knows one channel, dev, with one target.
func (b *backend) Repos(_ context.Context, channel, target string) ([]api.Repo, error) {
	if b.failure != nil {
		return nil, b.failure
	}
	if channel != "" && channel != "dev" {
		return nil, fmt.Errorf("channel %q: %w", channel, api.ErrNotFound)
	}
	if target != "" && target != "debian/bookworm/amd64" {
		return nil, nil
	}
	return []api.Repo{{Channel: "dev", Target: "debian/bookworm/amd64", Format: "deb", Packages: []api.RepoPackage{{Name: "libgrace", Version: "1.0-1", Arch: "amd64"}}}}, nil
}

func (b *backend) RepoClientConfig(_ context.Context, channel, target string) (string, error) {
	if channel != "dev" {
		return "", fmt.Errorf("channel %q: %w", channel, api.ErrNotFound)
	}
	return "Types: deb\nSuites: " + target + "\n", b.failure
}

func (b *backend) RepoRollback(ctx context.Context, channel string) (*api.RollbackResult, error) {
	b.user = api.User(ctx)
	if b.failure != nil {
		return nil, b.failure
	}
	return &api.RollbackResult{Channel: channel, Version: "v000002"}, nil
}

func TestRepoRoutes(t *testing.T) {
	tests := []struct {
		name, method, path string
		failure            error
		wantCode           int
		wantBody           string
	}{
		{"all", "GET", "/api/v1/repos", nil, http.StatusOK, `"name": "libgrace"`},
		{"no params on list", "GET", "/api/v1/repos?channel=dev", nil, http.StatusBadRequest, `unknown query parameter \"channel\"`},
		{"packages", "GET", "/api/v1/repos/dev/packages?target=debian/bookworm/amd64", nil, http.StatusOK, `"target": "debian/bookworm/amd64"`},
		{"empty target is an empty list", "GET", "/api/v1/repos/dev/packages?target=centos/9/x86_64", nil, http.StatusOK, `"repos": []`},
		{"unknown channel", "GET", "/api/v1/repos/nightly/packages", nil, http.StatusNotFound, `nightly`},
		{"no signer", "GET", "/api/v1/repos", fmt.Errorf("off: %w", api.ErrUnavailable), http.StatusServiceUnavailable, `off`},
		{"client config", "GET", "/api/v1/repos/dev/client-config?target=debian/bookworm/amd64", nil, http.StatusOK, "Suites: debian/bookworm/amd64"},
		{"client config needs a target", "GET", "/api/v1/repos/dev/client-config", nil, http.StatusBadRequest, "?target="},
		{"rollback", "POST", "/api/v1/repos/dev/rollback", nil, http.StatusOK, `"version": "v000002"`},
		{"rollback of an unknown version", "POST", "/api/v1/repos/dev/rollback", fmt.Errorf("rollback: %w", api.ErrNotFound), http.StatusNotFound, "rollback"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := serve(&backend{failure: tt.failure}, nil)
			defer srv.Close()
			code, body := do(t, srv, tt.method, tt.path, "")
			if code != tt.wantCode || !strings.Contains(body, tt.wantBody) {
				t.Errorf("%s %s: HTTP %d %s, want %d with %q", tt.method, tt.path, code, body, tt.wantCode, tt.wantBody)
			}
		})
	}
}

// TestRepoRollbackNeedsAUser: rollback is an action, asked of the
// authorizer as such, and runs as the user it names.
func TestRepoRollbackNeedsAUser(t *testing.T) {
	var asked []string
	auth := func(r *http.Request, action string) (string, error) {
		asked = append(asked, action)
		if r.Header.Get("Authorization") != "Bearer ok" {
			return "", api.ErrUnauthenticated
		}
		return "alice", nil
	}
	be := &backend{}
	srv := serve(be, auth)
	defer srv.Close()
	if code, _ := do(t, srv, "POST", "/api/v1/repos/dev/rollback", ""); code != http.StatusUnauthorized {
		t.Errorf("rollback without a token: HTTP %d, want 401", code)
	}
	req, _ := http.NewRequest("POST", srv.URL+"/api/v1/repos/dev/rollback", nil)
	req.Header.Set("Authorization", "Bearer ok")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || be.user != "alice" {
		t.Errorf("rollback with a token: HTTP %d as %q, want 200 as alice", resp.StatusCode, be.user)
	}
	if len(asked) == 0 || asked[0] != "rollback" {
		t.Errorf("authorizer asked for %v, want rollback", asked)
	}
}
