// Package confsrc is where the farm's configuration comes from and how it
// changes while the master runs: a local file or directory (watched), or a
// path in a git repository the master keeps a checkout of (polled, or
// pushed by webhook). It validates every new version with the checkconfig
// code, hands a good one to the master to apply, and keeps the status the
// API, ctl and the web banner show: the version running, and why the newest
// was refused. It also resolves secrets the config refers to.
package confsrc

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-git/v5"
	gitconfig "github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"

	"github.com/kiln-build/kiln/builders"
	"github.com/kiln-build/kiln/master/api"
)

// Errors of config loading callers branch on.
var (
	// ErrConfigRefused wraps every reason a new config is not applied; the
	// farm keeps running the last good one.
	ErrConfigRefused = errors.New("config refused")
	// ErrNoConfig: neither --config nor --config-git says where it is.
	ErrNoConfig = errors.New("no config: pass --config or --config-git")
)

// configRepoDir is where the config repository is checked out, under the
// data dir.
const configRepoDir = "config-repo"

// configSource is where the farm's config comes from: a local file or
// directory, or a path inside a git repository the master keeps a checkout
// of. It knows how to fetch a newer version; the master decides whether it
// is good.
type configSource struct {
	// local is the config file or directory (for git, inside the checkout).
	local string
	// git source; zero for a local config.
	git      builders.ConfigSource
	checkout string
	repo     *git.Repository
}

// Settings are the master's restart-only settings that a bootstrap file may
// give when the config itself lives in git.
type Settings struct {
	ConfigPath string
	ConfigGit  builders.ConfigSource
	DataDir    string
	HTTPAddr   string
	NATSAddr   string
	NATSURL    string
	Logger     *slog.Logger
}

// openConfig finds and loads the config the master starts with. A bootstrap
// file whose master.config names a git repository (or o.ConfigGit) makes
// the master clone it into the data dir, or reuse the checkout it has, and
// load the config from there; o.ConfigPath is then pointed at the loaded
// path so relative secret references resolve inside the checkout.
func openConfig(o *Settings) (*builders.Config, *builders.Matrix, *configSource, error) {
	var boot *builders.Config
	if o.ConfigPath != "" {
		c, err := builders.Load(o.ConfigPath)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("load config: %w", err)
		}
		boot = c
	}
	src := &configSource{local: o.ConfigPath}
	if boot != nil {
		src.git = boot.Master.Config
		if src.git.Git == "" && src.git.Path != "" {
			src.local = resolveNear(src.git.Path, o.ConfigPath)
		}
	}
	if o.ConfigGit.Git != "" {
		src.git = o.ConfigGit
	}
	if src.git.Git == "" {
		if src.local == "" {
			return nil, nil, nil, ErrNoConfig
		}
		o.ConfigPath = src.local
		cfg, mx, err := builders.LoadMatrix(src.local)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("load config: %w", err)
		}
		return cfg, mx, src, nil
	}
	if src.git.Branch == "" {
		src.git.Branch = builders.DefaultBranch
	}
	if src.git.Poll == 0 {
		src.git.Poll = builders.Duration(builders.DefaultConfigPoll)
	}
	// The bootstrap's master section holds what only a restart can change.
	if boot != nil {
		o.DataDir = cmp.Or(o.DataDir, boot.Master.DataDir)
		o.HTTPAddr = cmp.Or(o.HTTPAddr, boot.Master.HTTP)
		o.NATSAddr = cmp.Or(o.NATSAddr, boot.Master.NATS)
		o.NATSURL = cmp.Or(o.NATSURL, boot.Master.NATSURL)
	}
	if o.DataDir == "" {
		return nil, nil, nil, errors.New("no data dir for the config checkout: pass --data or set master.data_dir in the bootstrap file")
	}
	if err := src.openCheckout(filepath.Join(o.DataDir, configRepoDir), o.Logger); err != nil {
		return nil, nil, nil, err
	}
	o.ConfigPath = src.local
	cfg, mx, err := builders.LoadMatrix(src.local)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("load config from %s at %s: %w", src.git.Git, src.head(), err)
	}
	return cfg, mx, src, nil
}

// resolveNear makes a relative path relative to the directory of the file
// that names it, like the config's other paths.
func resolveNear(p, configPath string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(filepath.Dir(configPath), p)
}

// openCheckout clones the config repository, or opens the checkout an
// earlier run left, fetching what is new when the remote answers. An
// unreachable remote is fatal only without a checkout: a master restarted
// during a forge outage starts on the config it last ran.
func (s *configSource) openCheckout(dir string, log *slog.Logger) error {
	s.checkout = dir
	s.local = filepath.Join(dir, filepath.FromSlash(s.git.Path))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	repo, err := git.PlainOpen(dir)
	if errors.Is(err, git.ErrRepositoryNotExists) {
		repo, err = git.PlainCloneContext(ctx, dir, false, &git.CloneOptions{
			URL: s.git.Git, ReferenceName: plumbing.NewBranchReferenceName(s.git.Branch), SingleBranch: true,
		})
		if err != nil {
			os.RemoveAll(dir)
			return fmt.Errorf("clone config repository %s (branch %s): %w", s.git.Git, s.git.Branch, err)
		}
		s.repo = repo
		return nil
	}
	if err != nil {
		return fmt.Errorf("open config checkout %s: %w", dir, err)
	}
	s.repo = repo
	if err := s.checkURL(); err != nil {
		return err
	}
	// Start from the last commit this master ran; a newer one arrives
	// through the poller like any other, and is validated like any other.
	if good := s.lastGood(); good != "" {
		if err := s.checkoutRev(good); err != nil {
			return err
		}
	}
	if _, err := s.fetch(ctx); err != nil {
		log.Warn("config repository unreachable: starting on the last good checkout", "repo", s.git.Git, "err", err)
	}
	return nil
}

// checkURL refuses a checkout of another repository than the one
// configured: the operator changed master.config.git, and loading the old
// repository's config would be a surprise.
func (s *configSource) checkURL() error {
	rc, err := s.repo.Remote("origin")
	if err != nil {
		return fmt.Errorf("config checkout %s: %w", s.checkout, err)
	}
	if urls := rc.Config().URLs; len(urls) == 0 || urls[0] != s.git.Git {
		return fmt.Errorf("config checkout %s is of %v, not %s: move it away to clone anew", s.checkout, urls, s.git.Git)
	}
	return nil
}

func (s *configSource) goodFile() string { return s.checkout + ".good" }

// lastGood is the commit the master last applied, kept next to the
// checkout because the work tree may hold a refused commit.
func (s *configSource) lastGood() string {
	b, err := os.ReadFile(s.goodFile())
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func (s *configSource) setGood(commit string) error {
	if err := os.WriteFile(s.goodFile(), []byte(commit+"\n"), 0o600); err != nil {
		return fmt.Errorf("record good config commit: %w", err)
	}
	return nil
}

// fetch updates the remote branch and returns its head.
func (s *configSource) fetch(ctx context.Context) (string, error) {
	spec := gitconfig.RefSpec(fmt.Sprintf("+refs/heads/%s:refs/remotes/origin/%s", s.git.Branch, s.git.Branch))
	err := s.repo.FetchContext(ctx, &git.FetchOptions{RemoteName: "origin", RefSpecs: []gitconfig.RefSpec{spec}, Force: true})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return "", fmt.Errorf("fetch config repository %s: %w", s.git.Git, err)
	}
	ref, err := s.repo.Reference(plumbing.NewRemoteReferenceName("origin", s.git.Branch), true)
	if err != nil {
		return "", fmt.Errorf("config repository %s has no branch %s: %w", s.git.Git, s.git.Branch, err)
	}
	return ref.Hash().String(), nil
}

func (s *configSource) checkoutRev(rev string) error {
	wt, err := s.repo.Worktree()
	if err != nil {
		return fmt.Errorf("config checkout: %w", err)
	}
	if err := wt.Checkout(&git.CheckoutOptions{Hash: plumbing.NewHash(rev), Force: true}); err != nil {
		return fmt.Errorf("check out config commit %s: %w", rev, err)
	}
	return nil
}

// head is the commit checked out.
func (s *configSource) head() string {
	if s.repo == nil {
		return ""
	}
	h, err := s.repo.Head()
	if err != nil {
		return ""
	}
	return h.Hash().String()
}

// version identifies what load would read now: the checked-out commit, or
// the hash of a local config's files.
func (s *configSource) version() (string, error) {
	if s.repo != nil {
		return s.head(), nil
	}
	files, err := builders.ConfigFiles(s.local)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return "", fmt.Errorf("hash config: %w", err)
		}
		fmt.Fprintf(h, "%s\x00%d\x00", f, len(b))
		h.Write(b)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))[:16], nil
}

// stamp is a cheap fingerprint of a local config (names, sizes, mtimes), to
// notice edits without reading the files.
func (s *configSource) stamp() string {
	files, err := builders.ConfigFiles(s.local)
	if err != nil {
		return "error: " + err.Error()
	}
	var b strings.Builder
	for _, f := range files {
		if st, err := os.Stat(f); err == nil {
			fmt.Fprintf(&b, "%s %d %d\n", f, st.Size(), st.ModTime().UnixNano())
		}
	}
	return b.String()
}

// configState is the master's record of config reloads.
type configState struct {
	mu     sync.Mutex // serialises reloads and guards status
	src    *configSource
	status api.ConfigStatus
	// stamp is the local config's fingerprint when last looked at.
	stamp string
}
