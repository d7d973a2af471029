// Package gittest serves real git repositories over git's smart HTTP
// protocol on loopback, for tests of everything that polls, clones or
// fetches: git http-backend runs as a CGI program behind net/http/cgi, so
// the client side talks to the same server code a forge runs.
package gittest

import (
	"io"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Handler serves the bare repositories under root. It skips the test when
// git is not installed.
func Handler(t testing.TB, root string) http.Handler {
	t.Helper()
	gitBin, err := exec.LookPath("git")
	if err != nil {
		t.Skip("git not installed")
	}
	return &cgi.Handler{
		Path: gitBin,
		Args: []string{"http-backend"},
		Env:  []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"},
		// Polls racing a test's cleanup make git complain about the
		// vanished repository.
		Stderr: io.Discard,
	}
}

// Serve serves root on a loopback port until the test ends and returns the
// base URL; repository name is at URL + "/" + name.
func Serve(t testing.TB, root string) string {
	t.Helper()
	srv := httptest.NewServer(Handler(t, root))
	t.Cleanup(srv.Close)
	return srv.URL
}

// Repo is a bare repository under a served root plus a clone to commit
// from.
type Repo struct {
	t    testing.TB
	home string
	Bare string
	Work string
}

// New makes a repository named name (e.g. "opencore.git") under root whose
// HEAD is main.
func New(t testing.TB, root, name string) *Repo { return NewHead(t, root, name, "main") }

// NewHead makes a repository whose served HEAD points at head.
func NewHead(t testing.TB, root, name, head string) *Repo {
	t.Helper()
	r := &Repo{t: t, home: t.TempDir(), Bare: filepath.Join(root, name), Work: filepath.Join(t.TempDir(), "work")}
	r.Git("", "init", "-q", "--bare", "-b", head, r.Bare)
	r.Git("", "init", "-q", "-b", head, r.Work)
	r.Git(r.Work, "remote", "add", "origin", r.Bare)
	return r
}

// Git runs git in dir ("" is the test's working directory) with a fixed
// identity and no system or user configuration.
func (r *Repo) Git(dir string, args ...string) string {
	r.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"HOME="+r.home, "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=Kiln Test", "GIT_AUTHOR_EMAIL=test@kiln.invalid",
		"GIT_COMMITTER_NAME=Kiln Test", "GIT_COMMITTER_EMAIL=test@kiln.invalid")
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// Write puts a file into the work tree; the next Commit includes it.
func (r *Repo) Write(rel, content string) {
	r.t.Helper()
	p := filepath.Join(r.Work, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		r.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		r.t.Fatal(err)
	}
}

// Commit commits everything in the work tree (or nothing) on branch, pushes
// it and returns the commit id.
func (r *Repo) Commit(branch, msg string) string {
	r.t.Helper()
	r.Git(r.Work, "checkout", "-q", "-B", branch)
	r.Git(r.Work, "add", "-A")
	r.Git(r.Work, "commit", "-q", "--allow-empty", "-m", msg)
	r.Git(r.Work, "push", "-q", "origin", branch)
	return r.Git(r.Work, "rev-parse", "HEAD")
}

// Tag makes an annotated tag of HEAD, pushes it and returns the commit.
func (r *Repo) Tag(name string) string {
	r.t.Helper()
	r.Git(r.Work, "tag", "-a", "-m", "release "+name, name)
	r.Git(r.Work, "push", "-q", "origin", name)
	return r.Git(r.Work, "rev-parse", "HEAD")
}
