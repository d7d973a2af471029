// Package gittest is the former home of the git helpers now in kilntest,
// kept only until its last users (the master package's tests) move over.
//
// Deprecated: use kilntest.GitRepo, kilntest.ServeGit and
// kilntest.GitHandler.
package gittest

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/kiln-build/kiln/internal/kilntest"
)

// Handler is kilntest.GitHandler.
func Handler(t testing.TB, root string) http.Handler { return kilntest.GitHandler(t, root) }

// Serve serves root on a loopback port until the test ends and returns the
// base URL; repository name is at URL + "/" + name.
func Serve(t testing.TB, root string) string {
	t.Helper()
	srv := httptest.NewServer(kilntest.GitHandler(t, root))
	t.Cleanup(srv.Close)
	return srv.URL
}

// Repo is kilntest.Repo.
type Repo = kilntest.Repo

// New makes a repository whose commits are pushed to root/name (e.g.
// "opencore.git"), with HEAD at main.
func New(t testing.TB, root, name string) *Repo { return NewHead(t, root, name, "main") }

// NewHead is New with HEAD at head.
func NewHead(t testing.TB, root, name, head string) *Repo {
	t.Helper()
	return kilntest.GitRepo(t, kilntest.GitHead(head), kilntest.GitPushTo(filepath.Join(root, name)))
}
