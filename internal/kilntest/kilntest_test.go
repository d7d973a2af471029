package kilntest_test

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/nats-io/nats.go"

	"github.com/kiln-build/kiln/internal/kilntest"
)

func TestGitRepoBranchesAndTags(t *testing.T) {
	r := kilntest.GitRepo(t)
	r.Write("VERSION", "1.0\n")
	first := r.Commit("main", "first")
	second := r.Commit("", "empty, on the current branch")
	r.Write("dev.txt", "dev\n")
	dev := r.Commit("dev", "a new branch starts at HEAD")
	if r.Branch() != "dev" || r.Head() != dev {
		t.Fatalf("after committing on dev: branch %s at %s", r.Branch(), r.Head())
	}
	third := r.Commit("main", "main continues its own history")
	if tagged := r.Tag("v1"); tagged != third {
		t.Errorf("tag on %s, want HEAD %s", tagged, third)
	}

	repo, err := git.PlainOpen(r.Dir)
	if err != nil {
		t.Fatal(err)
	}
	parent := func(rev string) string {
		c, err := repo.CommitObject(plumbing.NewHash(rev))
		if err != nil {
			t.Fatal(err)
		}
		if c.NumParents() == 0 {
			return ""
		}
		return c.ParentHashes[0].String()
	}
	if parent(first) != "" || parent(second) != first || parent(dev) != second || parent(third) != second {
		t.Errorf("history: first<-%s second<-%s dev<-%s third<-%s", parent(first), parent(second), parent(dev), parent(third))
	}
	tag, err := repo.Tag("v1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := repo.TagObject(tag.Hash()); err != nil {
		t.Errorf("v1 is not an annotated tag: %v", err)
	}
}

func TestServedRepoKeepsItsHead(t *testing.T) {
	srv := kilntest.ServeGit(t)
	r := srv.Repo("trunky.git", kilntest.GitHead("trunk"), kilntest.GitAuthor("Eve & Mallory", "eve@kiln.invalid"))
	r.Write("README", "hi\n")
	trunk := r.Commit("trunk", "initial")
	main := r.Commit("main", "not the default branch")
	tagged := r.Tag("v0.1")

	out, err := exec.Command("git", "ls-remote", "--symref", r.URL).CombinedOutput()
	if err != nil {
		t.Fatalf("git ls-remote %s: %v\n%s", r.URL, err, out)
	}
	for _, want := range []string{
		"ref: refs/heads/trunk\tHEAD",
		trunk + "\trefs/heads/trunk",
		main + "\trefs/heads/main",
		tagged + "\trefs/tags/v0.1^{}",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("ls-remote lacks %q:\n%s", want, out)
		}
	}
	clone, err := git.PlainClone(t.TempDir(), false, &git.CloneOptions{URL: r.URL})
	if err != nil {
		t.Fatal(err)
	}
	head, _ := clone.Head()
	c, err := clone.CommitObject(head.Hash())
	if err != nil || c.Author.Name != "Eve & Mallory" || head.Name().Short() != "trunk" {
		t.Errorf("clone at %v by %v: %v", head, c, err)
	}
}

func TestGitAtKeepsExistingFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "src", "fixture")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "build.sh"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	r := kilntest.GitRepo(t, kilntest.GitAt(dir))
	rev := r.Commit("", "fixture 1.0")
	repo, _ := git.PlainOpen(dir)
	c, _ := repo.CommitObject(plumbing.NewHash(rev))
	f, err := c.File("build.sh")
	if err != nil || !f.Mode.IsFile() || f.Mode.String() != "0100755" {
		t.Errorf("build.sh in the commit: %v, %v", f, err)
	}
}

func TestNATSPermissionsAndRestart(t *testing.T) {
	s := kilntest.NATS(t,
		kilntest.NATSUser{Name: "boss", Password: "b"},
		kilntest.NATSUser{Name: "w1", Password: "w", Publish: []string{"up.w1"}, Subscribe: []string{"down.w1"}, Reply: true},
	)
	boss := s.Connect("boss", "b", nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond))
	w1 := s.Connect("w1", "w", nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond))
	if _, err := nats.Connect(s.URL(), nats.UserInfo("w1", "wrong")); err == nil {
		t.Fatal("a wrong password connected")
	}
	if _, err := w1.Subscribe("down.w1", func(m *nats.Msg) { m.Respond([]byte("ok " + string(m.Data))) }); err != nil {
		t.Fatal(err)
	}
	w1.Flush()
	reply, err := boss.Request("down.w1", []byte("job"), 2*time.Second)
	if err != nil || string(reply.Data) != "ok job" {
		t.Fatalf("request to w1: %v %v", reply, err)
	}
	if url := s.UserURL("boss", "b"); !strings.HasPrefix(url, "nats://boss:b@127.0.0.1:") {
		t.Errorf("UserURL %s", url)
	}

	before := s.URL()
	s.Restart()
	if s.URL() != before {
		t.Fatalf("restarted on %s, was %s", s.URL(), before)
	}
	kilntest.WaitFor(t, 10*time.Second, "both clients to reconnect", func() bool { return boss.IsConnected() && w1.IsConnected() })
	if _, err := boss.Request("down.w1", []byte("again"), 2*time.Second); err != nil {
		t.Errorf("request after the restart: %v", err)
	}
}

// recorder stands in for a test to see what Golden reports.
type recorder struct {
	testing.TB
	errors []string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

func TestGoldenShowsTheFirstDifference(t *testing.T) {
	if f := flag.Lookup("update"); f != nil && f.Value.String() == "true" {
		t.Skip("with -update Golden writes instead of comparing")
	}
	path := filepath.Join(t.TempDir(), "page.golden")
	want := "<html>\n<body>\n<p>one</p>\n<p>two</p>\n<p>three</p>\n</body>\n"
	if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{TB: t}
	kilntest.Golden(rec, path, []byte(want))
	if len(rec.errors) != 0 {
		t.Fatalf("same content reported: %v", rec.errors)
	}
	kilntest.Golden(rec, path, []byte(strings.Replace(want, "two", "deux", 1)))
	if len(rec.errors) != 1 || !strings.Contains(rec.errors[0], "line 4") || !strings.Contains(rec.errors[0], "<p>deux</p>") {
		t.Errorf("difference reported as %q", rec.errors)
	}
}
