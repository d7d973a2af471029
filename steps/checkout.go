package steps

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/protocol"
)

// Checkout puts the job's revision (or its branch head) into the workspace.
//
// Each repository URL has one bare mirror under the worker's cache dir; a
// build fetches into the mirror and clones from it locally, so the network
// carries only what changed since the last build of that repository.
// with: dir (default: the workspace itself). Sets the properties revision
// (the full hash checked out), commit_time (its committer time, Unix
// seconds, which packaging steps use as the files' mtime), and
// commit_author and commit_message, which the build page shows for changes
// whose sender did not say (forced and polled ones).
type Checkout struct{}

func (Checkout) Run(ctx context.Context, env *Env, spec protocol.Step) (Outcome, error) {
	url := env.Job.Git
	if url == "" {
		err := errors.New("checkout: the job has no git URL")
		return Outcome{Summary: err.Error()}, err
	}
	dir, err := env.Path(spec.With["dir"])
	if err != nil {
		return Outcome{Summary: err.Error()}, fmt.Errorf("checkout dir: %w", err)
	}
	mirror, unlock, err := updateMirror(ctx, env, url)
	if err != nil {
		return Outcome{Summary: "fetch failed: " + err.Error()}, err
	}
	env.Logf("cloning from mirror %s into %s", mirror, dir)
	// Still under the mirror's lock: another build's fetch rewrites the
	// mirror's refs, and a clone reading them meanwhile finds none.
	repo, err := git.PlainCloneContext(ctx, dir, false, &git.CloneOptions{URL: mirror, NoCheckout: true, Shared: true})
	unlock()
	if err != nil {
		return Outcome{Summary: "clone failed: " + err.Error()}, fmt.Errorf("checkout clone from mirror: %w", err)
	}
	rev := env.Job.Revision
	if rev == "" {
		rev = "HEAD"
		if env.Job.Branch != "" {
			rev = "refs/remotes/origin/" + env.Job.Branch
		}
	}
	hash, err := repo.ResolveRevision(plumbing.Revision(rev))
	if err != nil {
		return Outcome{Summary: fmt.Sprintf("revision %s not found in %s", rev, url)}, fmt.Errorf("checkout resolve %s: %w", rev, err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		return Outcome{Summary: err.Error()}, fmt.Errorf("checkout worktree: %w", err)
	}
	if err := wt.Checkout(&git.CheckoutOptions{Hash: *hash, Force: true}); err != nil {
		return Outcome{Summary: err.Error()}, fmt.Errorf("checkout %s: %w", hash, err)
	}
	commit, err := repo.CommitObject(*hash)
	if err != nil {
		return Outcome{Summary: err.Error()}, fmt.Errorf("checkout read commit %s: %w", hash, err)
	}
	env.Props.Set("revision", hash.String())
	env.Props.Set("commit_time", strconv.FormatInt(commit.Committer.When.Unix(), 10))
	env.Props.Set("commit_author", commit.Author.Name)
	env.Props.Set("commit_message", strings.TrimRight(commit.Message, "\n"))
	env.Logf("checked out %s (%s)", hash, rev)
	return Outcome{Summary: "checked out " + hash.String()[:12]}, nil
}

// updateMirror creates or fetches the bare mirror of url and returns its
// path, locked until the caller calls unlock. A file lock serialises builds
// of one repository on this worker (several slots, or several worker
// processes sharing a cache).
func updateMirror(ctx context.Context, env *Env, url string) (path string, unlock func(), err error) {
	sum := sha256.Sum256([]byte(url))
	root := filepath.Join(env.CacheDir, "git")
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", nil, fmt.Errorf("mirror cache: %w", err)
	}
	path = filepath.Join(root, hex.EncodeToString(sum[:12])+".git")
	// Held in a local: every error return below sets the named unlock to
	// nil, and the deferred release must still see the lock.
	release, err := lockFile(ctx, path+".lock")
	if err != nil {
		return "", nil, err
	}
	defer func() {
		if err != nil {
			release()
		}
	}()

	repo, err := git.PlainOpen(path)
	if errors.Is(err, git.ErrRepositoryNotExists) {
		env.Logf("creating mirror of %s", url)
		// Clone beside the final path and rename, so an interrupted clone
		// never looks like a mirror to the next build.
		tmp := path + ".tmp"
		if err := os.RemoveAll(tmp); err != nil {
			return "", nil, fmt.Errorf("mirror cleanup: %w", err)
		}
		if _, err := git.PlainCloneContext(ctx, tmp, true, &git.CloneOptions{URL: url, Mirror: true}); err != nil {
			os.RemoveAll(tmp)
			return "", nil, fmt.Errorf("mirror clone %s: %w", url, err)
		}
		if err := os.Rename(tmp, path); err != nil {
			return "", nil, fmt.Errorf("mirror install: %w", err)
		}
		return path, release, nil
	}
	if err != nil {
		return "", nil, fmt.Errorf("mirror open: %w", err)
	}
	env.Logf("fetching %s into mirror", url)
	err = repo.FetchContext(ctx, &git.FetchOptions{Force: true, Prune: true, Tags: git.AllTags})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return "", nil, fmt.Errorf("mirror fetch %s: %w", url, err)
	}
	return path, release, nil
}

// lockFile takes an exclusive flock on path, giving up when ctx ends.
func lockFile(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("mirror lock: %w", err)
	}
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("mirror lock: %w", err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("mirror lock: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
