package repo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/kiln-build/kiln/repo/pkgmeta"
)

// Options tune a Publisher. Zero values mean the documented defaults.
type Options struct {
	// Origin and Label go into every apt Release file (default "Kiln").
	Origin, Label string
	// ValidFor sets Valid-Until = Date + ValidFor in Release; 0 leaves it out.
	ValidFor time.Duration
	// KeepVersions is how many channel versions stay on disk, the served one
	// included (default 3: current and two to roll back to).
	KeepVersions int
	// KeepPackageVersions is how many versions of each package name and
	// architecture a target keeps (default 5; negative keeps all).
	KeepPackageVersions int
	// Now stamps Release dates and version records (default time.Now).
	Now    func() time.Time
	Logger *slog.Logger
}

func (o *Options) defaults() {
	if o.Origin == "" {
		o.Origin = "Kiln"
	}
	if o.Label == "" {
		o.Label = "Kiln"
	}
	if o.KeepVersions <= 0 {
		o.KeepVersions = 3
	}
	if o.KeepPackageVersions == 0 {
		o.KeepPackageVersions = 5
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Publisher publishes channels under one root directory.
type Publisher struct {
	root   string
	signer Signer
	opts   Options
	st     store

	mu     sync.Mutex                   // serializes publishes in this process; the lock file does across processes
	caches map[string]*indexCache       // per channel, guarded by mu
	pools  map[string]map[string]string // per channel: pool path → sha256, guarded by mu
	// gcSeen is the pool generation the pools maps describe; another process's
	// Prune bumps ROOT/.pool-generation and so invalidates them.
	gcSeen string
}

// Open prepares root (creating it) for publishing.
func Open(root string, s Signer, opts Options) (*Publisher, error) {
	if s == nil {
		return nil, fmt.Errorf("open repository root %s: %w: no signer", root, ErrInvalid)
	}
	opts.defaults()
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("open repository root %s: %w", root, err)
	}
	st := store{dir: filepath.Join(abs, ".store")}
	if err := os.MkdirAll(st.dir, 0o755); err != nil {
		return nil, fmt.Errorf("open repository root %s: %w", root, err)
	}
	return &Publisher{root: abs, signer: s, opts: opts, st: st, caches: map[string]*indexCache{}, pools: map[string]map[string]string{}}, nil
}

// Version is one published tree of a channel.
type Version struct {
	Channel  string    `json:"channel"`
	ID       string    `json:"id"`
	Created  time.Time `json:"created"`
	Current  bool      `json:"current"`
	Packages int       `json:"packages"`
	// Dropped lists the packages left out by retention in this publish.
	Dropped []string `json:"dropped,omitempty"`
}

// Manifest is what a version holds, for listing and auditing after a
// rollback. On disk (.kiln/, never served) each target's list is its own
// file, so an unchanged target costs no rewriting.
type Manifest struct {
	Version Version          `json:"version"`
	Targets []ManifestTarget `json:"targets"`
}

// ManifestTarget lists one target's packages in a version.
type ManifestTarget struct {
	Target   Target          `json:"target"`
	Packages []ManifestEntry `json:"packages"`
}

// ManifestEntry is one published package file.
type ManifestEntry struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Arch    string `json:"arch"`
	Path    string `json:"path"` // relative to the channel root
	SHA256  string `json:"sha256"`
	Size    int64  `json:"size"`
}

func (p *Publisher) channelDir(channel string) string { return filepath.Join(p.root, channel) }

func checkChannel(channel string) error {
	if err := pkgmeta.CheckFileName(channel); err != nil {
		return fmt.Errorf("%w: channel: %w", ErrInvalid, err)
	}
	return nil
}

// lock serializes every change under the root.
func (p *Publisher) lock() (func(), error) {
	p.mu.Lock()
	unlock, err := lockFile(filepath.Join(p.root, ".lock"))
	if err != nil {
		p.mu.Unlock()
		return nil, err
	}
	gen, err := os.ReadFile(filepath.Join(p.root, poolGenerationFile))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		unlock()
		p.mu.Unlock()
		return nil, fmt.Errorf("read pool generation: %w", err)
	}
	if string(gen) != p.gcSeen {
		clear(p.pools)
		p.gcSeen = string(gen)
	}
	return func() { unlock(); p.mu.Unlock() }, nil
}

// poolGenerationFile changes whenever Prune removes pool files.
const poolGenerationFile = ".pool-generation"

// bumpPoolGeneration records that pool files were removed, for every
// Publisher on this root (in this process or another).
func (p *Publisher) bumpPoolGeneration() error {
	gen := strconv.FormatInt(time.Now().UnixNano(), 10)
	tmp := filepath.Join(p.root, poolGenerationFile+".new")
	if err := os.WriteFile(tmp, []byte(gen), 0o644); err != nil {
		return fmt.Errorf("bump pool generation: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(p.root, poolGenerationFile)); err != nil {
		return fmt.Errorf("bump pool generation: %w", err)
	}
	p.gcSeen = gen
	return nil
}

// Publish makes contents the served state of channel and returns the new
// version. On any error the previously served version stays as it was.
func (p *Publisher) Publish(ctx context.Context, channel string, contents ChannelContents) (Version, error) {
	start := time.Now()
	if err := checkChannel(channel); err != nil {
		return Version{}, err
	}
	plan, err := p.plan(contents)
	if err != nil {
		return Version{}, fmt.Errorf("publish %s: %w", channel, err)
	}
	unlock, err := p.lock()
	if err != nil {
		return Version{}, fmt.Errorf("publish %s: %w", channel, err)
	}
	defer unlock()

	cdir := p.channelDir(channel)
	if err := os.MkdirAll(cdir, 0o755); err != nil {
		return Version{}, fmt.Errorf("publish %s: %w", channel, err)
	}
	// A publish killed mid-way leaves its temporary tree; nothing uses it.
	if stale, _ := filepath.Glob(filepath.Join(cdir, ".tmp-*")); len(stale) > 0 {
		for _, dir := range stale {
			if err := os.RemoveAll(dir); err != nil {
				return Version{}, fmt.Errorf("publish %s: clear %s: %w", channel, dir, err)
			}
		}
	}
	versions, err := p.versions(channel)
	if err != nil {
		return Version{}, fmt.Errorf("publish %s: %w", channel, err)
	}
	v := Version{Channel: channel, ID: nextID(versions), Created: p.opts.Now().UTC(), Current: true, Dropped: plan.dropped}
	prev := ""
	if cur := currentOf(versions); cur != nil {
		prev = filepath.Join(cdir, cur.ID)
	}
	t := newTree(p.st)
	fillStart := time.Now()
	manifest, err := p.fill(ctx, channel, t, plan, prev, v.Created)
	if err != nil {
		return Version{}, fmt.Errorf("publish %s: %w", channel, err)
	}
	commitStart := time.Now()
	for _, mt := range manifest {
		v.Packages += len(mt.Packages)
	}
	if err := p.commit(channel, t, Manifest{Version: v, Targets: manifest}); err != nil {
		return Version{}, fmt.Errorf("publish %s: %w", channel, err)
	}
	dropStart := time.Now()
	if _, err := p.dropOldVersions(channel); err != nil {
		// The new version is served; a failed cleanup only leaves extra files.
		p.opts.Logger.Warn("removing old versions after publish failed", "channel", channel, "err", err)
	}
	p.opts.Logger.Info("published", "channel", channel, "version", v.ID, "packages", v.Packages,
		"files", len(t.files), "took", time.Since(start), "indexes", commitStart.Sub(fillStart),
		"commit", dropStart.Sub(commitStart), "drop_old", time.Since(dropStart))
	return v, nil
}

// commit writes the tree as a new version directory, syncs it and switches
// current to it.
func (p *Publisher) commit(channel string, t *tree, m Manifest) (err error) {
	cdir := p.channelDir(channel)
	tmp := filepath.Join(cdir, ".tmp-"+m.Version.ID)
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("clear %s: %w", tmp, err)
	}
	defer func() {
		if err != nil {
			if rmErr := os.RemoveAll(tmp); rmErr != nil {
				p.opts.Logger.Warn("cleanup of failed publish", "dir", tmp, "err", rmErr)
			}
		}
	}()
	if err := os.Mkdir(tmp, 0o755); err != nil {
		return fmt.Errorf("create version: %w", err)
	}
	for _, rel := range t.paths() {
		if err := p.st.link(t.files[rel], filepath.Join(tmp, filepath.FromSlash(rel))); err != nil {
			return err
		}
	}
	for rel, from := range t.carried {
		if _, taken := t.files[rel]; taken {
			continue
		}
		if err := os.Link(from, filepath.Join(tmp, filepath.FromSlash(rel))); err != nil {
			return fmt.Errorf("carry %s: %w", rel, err)
		}
	}
	for rel, target := range t.symlinks {
		link := filepath.Join(tmp, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
			return fmt.Errorf("link pool %s: %w", rel, err)
		}
		if err := os.Symlink(target, link); err != nil {
			return fmt.Errorf("link pool %s: %w", rel, err)
		}
	}
	if err := os.MkdirAll(filepath.Join(tmp, ".kiln"), 0o755); err != nil {
		return fmt.Errorf("create version: %w", err)
	}
	if err := writeVersionRecord(tmp, m); err != nil {
		return err
	}
	synced := time.Now()
	if err := syncFS(tmp); err != nil {
		return err
	}
	p.opts.Logger.Debug("synced", "version", m.Version.ID, "took", time.Since(synced))
	final := filepath.Join(cdir, m.Version.ID)
	if err := os.Rename(tmp, final); err != nil {
		return fmt.Errorf("finish version: %w", err)
	}
	if err := p.switchTo(channel, m.Version.ID); err != nil {
		if rmErr := os.RemoveAll(final); rmErr != nil {
			p.opts.Logger.Warn("cleanup of unswitched version", "dir", final, "err", rmErr)
		}
		return err
	}
	return nil
}

// versionRecord is .kiln/version.json: the version and its target files.
type versionRecord struct {
	Version Version  `json:"version"`
	Targets []string `json:"targets"` // file names under .kiln/
}

func writeVersionRecord(dir string, m Manifest) error {
	rec := versionRecord{Version: m.Version}
	for _, t := range m.Targets {
		rec.Targets = append(rec.Targets, manifestName(t.Target))
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("write version record: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".kiln", "version.json"), data, 0o444); err != nil {
		return fmt.Errorf("write version record: %w", err)
	}
	return nil
}

// switchTo points current at version id with an atomic rename of a fresh symlink.
func (p *Publisher) switchTo(channel, id string) error {
	cdir := p.channelDir(channel)
	next := filepath.Join(cdir, "current.new")
	if err := os.Remove(next); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("switch to %s: %w", id, err)
	}
	if err := os.Symlink(id, next); err != nil {
		return fmt.Errorf("switch to %s: %w", id, err)
	}
	if err := os.Rename(next, filepath.Join(cdir, "current")); err != nil {
		os.Remove(next)
		return fmt.Errorf("switch to %s: %w", id, err)
	}
	// The switch is in effect from here on; failing to make the directory
	// entry durable must not undo it.
	if err := syncDir(cdir); err != nil {
		p.opts.Logger.Warn("switch not synced to disk", "channel", channel, "version", id, "err", err)
	}
	return nil
}
