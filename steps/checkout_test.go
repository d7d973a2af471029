package steps

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/kiln-build/kiln/protocol"
)

// gitRepo is a real repository in a temp dir, committed to with go-git.
type gitRepo struct {
	t    *testing.T
	dir  string
	repo *git.Repository
}

func newGitRepo(t *testing.T) *gitRepo {
	t.Helper()
	dir := t.TempDir()
	repo, err := git.PlainInit(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	return &gitRepo{t, dir, repo}
}

// commit writes files and commits them, returning the new revision.
func (r *gitRepo) commit(files map[string]string) string {
	r.t.Helper()
	wt, err := r.repo.Worktree()
	if err != nil {
		r.t.Fatal(err)
	}
	for name, content := range files {
		writeFile(r.t, filepath.Join(r.dir, name), content)
		if _, err := wt.Add(name); err != nil {
			r.t.Fatal(err)
		}
	}
	h, err := wt.Commit("change", &git.CommitOptions{Author: &object.Signature{Name: "t", Email: "t@example.com", When: time.Now()}})
	if err != nil {
		r.t.Fatal(err)
	}
	return h.String()
}

func (r *gitRepo) branch() string {
	r.t.Helper()
	head, err := r.repo.Reference(plumbing.HEAD, false)
	if err != nil {
		r.t.Fatal(err)
	}
	return head.Target().Short()
}

func TestCheckout(t *testing.T) {
	src := newGitRepo(t)
	first := src.commit(map[string]string{"VERSION": "1.0\n"})
	src.commit(map[string]string{"VERSION": "2.0\n"})
	cache := t.TempDir()

	run := func(job protocol.Job) (*Env, Outcome, error) {
		job.Git = src.dir
		env, _ := newTestEnv(t, job)
		env.CacheDir = cache
		out, err := Checkout{}.Run(context.Background(), env, protocol.Step{Type: "checkout"})
		return env, out, err
	}
	read := func(env *Env) string {
		b, err := os.ReadFile(filepath.Join(env.Workspace, "VERSION"))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	env, out, err := run(protocol.Job{Revision: first})
	if err != nil {
		t.Fatalf("exact revision: %v", err)
	}
	if got := read(env); got != "1.0\n" {
		t.Errorf("exact revision checked out VERSION %q", got)
	}
	if rev, _ := env.Props.Get("revision"); rev != first {
		t.Errorf("revision property %q, want %q", rev, first)
	}
	if out.Summary != "checked out "+first[:12] {
		t.Errorf("summary %q", out.Summary)
	}
	mirrors, _ := filepath.Glob(filepath.Join(cache, "git", "*.git"))
	if len(mirrors) != 1 {
		t.Fatalf("mirrors in cache: %v", mirrors)
	}

	// A commit made after the mirror exists must arrive through a fetch.
	third := src.commit(map[string]string{"VERSION": "3.0\n"})
	env, _, err = run(protocol.Job{Branch: src.branch()})
	if err != nil {
		t.Fatalf("branch head: %v", err)
	}
	if got := read(env); got != "3.0\n" {
		t.Errorf("branch head checked out VERSION %q", got)
	}
	if rev, _ := env.Props.Get("revision"); rev != third {
		t.Errorf("revision property %q, want %q", rev, third)
	}

	if _, out, err := run(protocol.Job{Revision: "0123456789abcdef0123456789abcdef01234567"}); err == nil {
		t.Errorf("unknown revision checked out: %s", out.Summary)
	}
}

// A fetch into an existing mirror can fail (the repository went away, the
// network dropped); the build must fail with the reason and release the
// mirror's lock, so the next build of that repository is not stuck behind it.
func TestCheckoutFetchFailureReleasesTheMirror(t *testing.T) {
	src := newGitRepo(t)
	src.commit(map[string]string{"VERSION": "1.0\n"})
	branch := src.branch()
	cache := t.TempDir()
	run := func(url string) (Outcome, error) {
		env, _ := newTestEnv(t, protocol.Job{Git: url, Branch: branch})
		env.CacheDir = cache
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return Checkout{}.Run(ctx, env, protocol.Step{Type: "checkout"})
	}
	if _, err := run(src.dir); err != nil {
		t.Fatalf("first checkout: %v", err)
	}
	if err := os.RemoveAll(src.dir); err != nil {
		t.Fatal(err)
	}
	out, err := run(src.dir)
	if err == nil {
		t.Fatalf("checkout of a removed repository succeeded: %s", out.Summary)
	}
	if !strings.Contains(out.Summary, "mirror fetch") {
		t.Errorf("summary %q does not say the mirror fetch failed", out.Summary)
	}
	// Still failing, not blocked: the lock was released.
	if _, err := run(src.dir); err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("second checkout after a failed fetch: %v, want a fetch error", err)
	}
}
