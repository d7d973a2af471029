package steps

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kiln-build/kiln/internal/kilntest"
	"github.com/kiln-build/kiln/protocol"
)

func TestCheckout(t *testing.T) {
	src := kilntest.GitRepo(t)
	src.Write("VERSION", "1.0\n")
	first := src.Commit("", "version 1.0")
	src.Write("VERSION", "2.0\n")
	src.Commit("", "version 2.0")
	cache := t.TempDir()

	run := func(job protocol.Job) (*Env, Outcome, error) {
		job.Git = src.Dir
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
	src.Write("VERSION", "3.0\n")
	third := src.Commit("", "version 3.0")
	env, _, err = run(protocol.Job{Branch: src.Branch()})
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
	src := kilntest.GitRepo(t)
	src.Write("VERSION", "1.0\n")
	src.Commit("", "version 1.0")
	branch := src.Branch()
	cache := t.TempDir()
	run := func(url string) (Outcome, error) {
		env, _ := newTestEnv(t, protocol.Job{Git: url, Branch: branch})
		env.CacheDir = cache
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return Checkout{}.Run(ctx, env, protocol.Step{Type: "checkout"})
	}
	if _, err := run(src.Dir); err != nil {
		t.Fatalf("first checkout: %v", err)
	}
	if err := os.RemoveAll(src.Dir); err != nil {
		t.Fatal(err)
	}
	out, err := run(src.Dir)
	if err == nil {
		t.Fatalf("checkout of a removed repository succeeded: %s", out.Summary)
	}
	if !strings.Contains(out.Summary, "mirror fetch") {
		t.Errorf("summary %q does not say the mirror fetch failed", out.Summary)
	}
	// Still failing, not blocked: the lock was released.
	if _, err := run(src.Dir); err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("second checkout after a failed fetch: %v, want a fetch error", err)
	}
}
