package kilntest

import (
	"errors"
	"io"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// Repo is a git repository with a work tree that a test commits to, as a
// developer would. Commits are made in-process, so a Repo on its own needs
// no git installed; one that publishes to a bare repository (GitPushTo,
// GitServer.Repo) pushes with git, which atomically moves the refs a
// concurrent poller reads.
type Repo struct {
	// Dir is the work tree: Write puts files there, and a farm config may
	// name it as a component's git.
	Dir string
	// URL is where clients fetch from: the served address for a repository
	// of a GitServer, the bare repository with GitPushTo, else Dir.
	URL string

	t      testing.TB
	repo   *git.Repository
	bare   string
	author object.Signature
}

// GitOption configures GitRepo.
type GitOption func(*gitOptions)

type gitOptions struct {
	dir, head, bare string
	author          object.Signature
}

// GitAt makes the work tree at dir, which may already hold files (a
// fixture copied there, say) for the first Commit to record. The default
// is a fresh temporary directory.
func GitAt(dir string) GitOption { return func(o *gitOptions) { o.dir = dir } }

// GitHead names the branch HEAD points at, in the work tree and in the
// bare repository, so what clients see as the default branch. Default main.
func GitHead(branch string) GitOption { return func(o *gitOptions) { o.head = branch } }

// GitPushTo creates a bare repository at path that every Commit and Tag is
// pushed to: the forge's copy, served with GitHandler or ServeGit.
func GitPushTo(path string) GitOption { return func(o *gitOptions) { o.bare = path } }

// GitAuthor sets who commits and tags. Default "Kiln Test
// <test@kiln.invalid>".
func GitAuthor(name, email string) GitOption {
	return func(o *gitOptions) { o.author.Name, o.author.Email = name, email }
}

// GitRepo makes an empty repository; nothing exists on its branches until
// the first Commit.
func GitRepo(t testing.TB, opts ...GitOption) *Repo {
	t.Helper()
	o := gitOptions{head: "main", author: object.Signature{Name: "Kiln Test", Email: "test@kiln.invalid"}}
	for _, opt := range opts {
		opt(&o)
	}
	if o.dir == "" {
		o.dir = t.TempDir()
	}
	head := plumbing.NewBranchReferenceName(o.head)
	repo, err := git.PlainInitWithOptions(o.dir, &git.PlainInitOptions{InitOptions: git.InitOptions{DefaultBranch: head}})
	if err != nil {
		t.Fatalf("git init %s: %v", o.dir, err)
	}
	r := &Repo{Dir: o.dir, URL: o.dir, t: t, repo: repo, author: o.author}
	if o.bare != "" {
		NeedTool(t, "git")
		if _, err := git.PlainInitWithOptions(o.bare, &git.PlainInitOptions{Bare: true, InitOptions: git.InitOptions{DefaultBranch: head}}); err != nil {
			t.Fatalf("git init --bare %s: %v", o.bare, err)
		}
		r.bare, r.URL = o.bare, o.bare
	}
	return r
}

// Write puts a file into the work tree; the next Commit records it.
func (r *Repo) Write(rel, content string) {
	r.t.Helper()
	p := filepath.Join(r.Dir, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		r.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		r.t.Fatal(err)
	}
}

// WriteFiles writes each file, named relative to the work tree.
func (r *Repo) WriteFiles(files map[string]string) {
	r.t.Helper()
	for rel, content := range files {
		r.Write(rel, content)
	}
}

// Commit records the whole work tree (or nothing new: empty commits are
// fine) on branch and returns the commit id. An existing branch continues
// its own history; a new one starts at HEAD. An empty branch commits to
// the current one. The branch stays checked out, and is pushed when the
// repository publishes.
func (r *Repo) Commit(branch, msg string) string {
	r.t.Helper()
	if branch == "" {
		branch = r.Branch()
	}
	r.switchTo(plumbing.NewBranchReferenceName(branch))
	wt, err := r.repo.Worktree()
	if err != nil {
		r.t.Fatal(err)
	}
	if err := wt.AddWithOptions(&git.AddOptions{All: true}); err != nil {
		r.t.Fatalf("git add -A: %v", err)
	}
	sig := r.signature()
	h, err := wt.Commit(msg, &git.CommitOptions{Author: &sig, Committer: &sig, AllowEmptyCommits: true})
	if err != nil {
		r.t.Fatalf("git commit on %s: %v", branch, err)
	}
	r.publish("refs/heads/" + branch)
	return h.String()
}

// switchTo points HEAD at branch without touching the work tree or the
// index, so whatever the test wrote is what the commit records.
func (r *Repo) switchTo(branch plumbing.ReferenceName) {
	r.t.Helper()
	st := r.repo.Storer
	if head, err := st.Reference(plumbing.HEAD); err == nil && head.Target() == branch {
		return
	}
	if _, err := st.Reference(branch); errors.Is(err, plumbing.ErrReferenceNotFound) {
		// Before the first commit there is nothing to start from: the
		// branch is born by the commit.
		if cur, err := r.repo.Head(); err == nil {
			if err := st.SetReference(plumbing.NewHashReference(branch, cur.Hash())); err != nil {
				r.t.Fatal(err)
			}
		}
	} else if err != nil {
		r.t.Fatal(err)
	}
	if err := st.SetReference(plumbing.NewSymbolicReference(plumbing.HEAD, branch)); err != nil {
		r.t.Fatal(err)
	}
}

// Tag makes an annotated tag of HEAD, publishes it and returns the commit
// it tags.
func (r *Repo) Tag(name string) string {
	r.t.Helper()
	head := r.Head()
	sig := r.signature()
	if _, err := r.repo.CreateTag(name, plumbing.NewHash(head), &git.CreateTagOptions{Tagger: &sig, Message: "release " + name}); err != nil {
		r.t.Fatalf("git tag %s: %v", name, err)
	}
	r.publish("refs/tags/" + name)
	return head
}

// Head is the commit HEAD is at.
func (r *Repo) Head() string {
	r.t.Helper()
	ref, err := r.repo.Head()
	if err != nil {
		r.t.Fatalf("git rev-parse HEAD: %v", err)
	}
	return ref.Hash().String()
}

// Branch is the branch HEAD points at.
func (r *Repo) Branch() string {
	r.t.Helper()
	ref, err := r.repo.Storer.Reference(plumbing.HEAD)
	if err != nil {
		r.t.Fatal(err)
	}
	return ref.Target().Short()
}

func (r *Repo) signature() object.Signature {
	sig := r.author
	sig.When = time.Now()
	return sig
}

func (r *Repo) publish(ref string) {
	r.t.Helper()
	if r.bare == "" {
		return
	}
	cmd := exec.Command("git", "push", "-q", r.bare, "+"+ref+":"+ref)
	cmd.Dir = r.Dir
	cmd.Env = append(os.Environ(), gitIsolation...)
	if out, err := cmd.CombinedOutput(); err != nil {
		r.t.Fatalf("git push %s: %v\n%s", ref, err, out)
	}
}

// gitIsolation keeps the machine's and the user's git configuration
// (hooks, URL rewrites, credential helpers) out of the tests.
var gitIsolation = []string{"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=" + os.DevNull, "GIT_TERMINAL_PROMPT=0"}

// GitHandler serves the bare repositories under root over git's smart
// HTTP protocol: git http-backend runs as a CGI program, so clients talk
// to the server code a forge runs.
func GitHandler(t testing.TB, root string) http.Handler {
	t.Helper()
	gitBin := NeedTool(t, "git")
	return &cgi.Handler{
		Path: gitBin,
		Args: []string{"http-backend"},
		Env:  append([]string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"}, gitIsolation...),
		// Polls racing a test's cleanup make git complain about the
		// vanished repository.
		Stderr: io.Discard,
	}
}

// GitServer serves the bare repositories under Root on a loopback port
// until the test ends.
type GitServer struct {
	Root string
	// URL is the base address: repository name is at URL + "/" + name.
	URL string
	t   testing.TB
}

// ServeGit starts a GitServer on a fresh root.
func ServeGit(t testing.TB) *GitServer {
	t.Helper()
	root := t.TempDir()
	srv := httptest.NewServer(GitHandler(t, root))
	t.Cleanup(srv.Close)
	return &GitServer{Root: root, URL: srv.URL, t: t}
}

// Repo makes a repository served as name (e.g. "libgrace.git"); its URL is
// the address clients fetch.
func (s *GitServer) Repo(name string, opts ...GitOption) *Repo {
	s.t.Helper()
	r := GitRepo(s.t, append(opts, GitPushTo(filepath.Join(s.Root, filepath.FromSlash(name))))...)
	r.URL = s.URL + "/" + strings.TrimPrefix(name, "/")
	return r
}
