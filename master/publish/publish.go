// Package publish turns a good build's packages into signed repositories:
// it fetches and checks each artifact against the build's target, has the
// signing agent sign rpms, publishes the dev channel atomically and records
// the publication in the same raft entry as the build's result, so that
// dependents never start before their dependencies are served. It also
// keeps every channel served while this master leads (republishing before
// signatures expire, pruning), rolls channels back, and serves /repos/.
// Promotion between channels belongs here too.
package publish

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kiln-build/kiln/builders"
	"github.com/kiln-build/kiln/master/sched"
	"github.com/kiln-build/kiln/master/state"
	"github.com/kiln-build/kiln/protocol"
	"github.com/kiln-build/kiln/repo"
	"github.com/kiln-build/kiln/repo/pkgmeta"
	"github.com/kiln-build/kiln/signing"
)

// DevChannel gets every good build; dependents build against it.
const DevChannel = "dev"

var (
	// ErrNoRepos means this master publishes no repositories: it runs
	// without a signing agent.
	ErrNoRepos = errors.New("repository publishing is off: the master has no signing agent (--signer)")
	// ErrUnknownChannel names a channel the configuration does not have.
	ErrUnknownChannel = errors.New("unknown channel")
	// ErrRepublish: a build made a package the channel lists already, same
	// name, version and architecture, with other bytes.
	ErrRepublish = errors.New("version already published")
	// ErrPublishing: a result for the same attempt is being published; the
	// worker repeats its result and gets the answer then.
	ErrPublishing = errors.New("result of this attempt is being published")
)

// Options are what a Publisher works with.
type Options struct {
	// DataDir holds repos/ (the served trees) and artifacts/ (the package
	// files by sha256, the publisher's source).
	DataDir string
	// SignerSocket is the signing agent's Unix socket; default
	// DATA/signer.sock when it exists.
	SignerSocket string
	Node         *state.Node
	Matrix       func() *builders.Matrix
	Objects      jetstream.ObjectStore
	// HTTPAddr is the master's listener, for repository URLs when the
	// config has no master.public_url.
	HTTPAddr string
	Metrics  interface{ ObservePublish(time.Duration) }
	Logger   *slog.Logger
}

// Publisher publishes the farm's channels from the raft state. Only the
// leader publishes; each master serves its own copy under DATA/repos.
// Without an agent (signer nil) the Publisher publishes nothing, and a
// build that makes packages ends as an exception rather than succeed
// unpublished.
type Publisher struct {
	o         Options
	pub       *repo.Publisher
	signer    signing.Client
	root      string
	artifacts string
	log       *slog.Logger

	// mu serializes read state → publish → record, so two builds finishing
	// together cannot each publish the channel without the other's packages.
	mu sync.Mutex
	// cached lists the channels whose listed packages this master has
	// in its artifact cache, guarded by mu.
	cached   map[string]bool
	inflight map[string]bool // build/attempt results being published, guarded by flightMu
	flightMu sync.Mutex
	// wake asks the leader's maintenance loop to look at the channels now
	// (the configuration changed: a new channel or target to serve).
	wake chan struct{}

	keyMu sync.Mutex
	keys  map[string][]byte // armored public keys by key name

	// targets are the current matrix's targets as repositories see them;
	// every job asks, so they are worked out once per configuration.
	targets atomic.Pointer[matrixTargets]
}

type matrixTargets struct {
	mx   *builders.Matrix
	list []repo.Target // sorted by name, without a key
}

// Open connects the signing agent and opens DATA/repos. Without an agent
// the Publisher it returns publishes nothing (see Publisher).
func Open(ctx context.Context, o Options) (*Publisher, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	log := o.Logger.With("component", "repos")
	r := &Publisher{o: o, root: filepath.Join(o.DataDir, "repos"), artifacts: filepath.Join(o.DataDir, "artifacts"),
		log: log, cached: map[string]bool{}, inflight: map[string]bool{}, keys: map[string][]byte{}, wake: make(chan struct{}, 1)}
	sock := o.SignerSocket
	if sock == "" {
		def := filepath.Join(o.DataDir, "signer.sock")
		if _, err := os.Stat(def); err == nil {
			sock = def
		}
	}
	if sock == "" {
		log.Warn("no signing agent: repositories are not published, and builds that make packages end as exception", "want", filepath.Join(o.DataDir, "signer.sock"))
		return r, nil
	}
	client, err := signing.DialSocket(sock)
	if err != nil {
		return nil, fmt.Errorf("signing agent at %s: %w", sock, err)
	}
	r.signer = client
	if err := r.start(ctx); err != nil {
		client.Close()
		return nil, err
	}
	return r, nil
}

// off tells a master that has no signing agent, and so publishes nothing.
func (r *Publisher) off() bool { return r.signer == nil }

func (r *Publisher) start(ctx context.Context) error {
	cfg := r.o.Matrix().Config.Repos
	// Every channel's key must be there before anything is published with it.
	for _, ch := range cfg.Channels {
		if _, err := r.publicKey(ctx, ch.Key); err != nil {
			return fmt.Errorf("channel %s: %w", ch.Name, err)
		}
	}
	if err := os.MkdirAll(r.artifacts, 0o700); err != nil {
		return fmt.Errorf("create artifact cache: %w", err)
	}
	keep := cfg.Retain
	if keep == 0 {
		keep = -1 // retain 0 keeps every version (config docs)
	}
	var err error
	r.pub, err = repo.Open(r.root, repoSigner{r.signer}, repo.Options{Origin: cfg.Origin, Label: cfg.Label, ValidFor: cfg.ValidFor.D(),
		KeepPackageVersions: keep, Logger: r.log})
	if err != nil {
		return fmt.Errorf("open repositories: %w", err)
	}
	return nil
}

// Refresh wakes the maintenance loop (the configuration changed: a new
// channel or target to serve); wakes coalesce.
func (r *Publisher) Refresh() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Close lets go of the signing agent.
func (r *Publisher) Close() {
	if r != nil && r.signer != nil {
		r.signer.Close()
	}
}

// publicKey returns (and caches) the armored public key of a signing key.
func (r *Publisher) publicKey(ctx context.Context, key string) ([]byte, error) {
	r.keyMu.Lock()
	defer r.keyMu.Unlock()
	if k, ok := r.keys[key]; ok {
		return k, nil
	}
	k, err := r.signer.PublicKey(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("public key %q from the signing agent: %w", key, err)
	}
	r.keys[key] = k
	return k, nil
}

func (r *Publisher) artifactPath(sha string) string { return filepath.Join(r.artifacts, sha) }

// Channel returns a configured channel.
func (r *Publisher) Channel(name string) (builders.Channel, error) {
	cfg := r.o.Matrix().Config.Repos
	i := slices.IndexFunc(cfg.Channels, func(c builders.Channel) bool { return c.Name == name })
	if i < 0 {
		return builders.Channel{}, fmt.Errorf("%w %q", ErrUnknownChannel, name)
	}
	return cfg.Channels[i], nil
}

// Targets are the repository targets of a channel: one per configured
// target, in the format its builders make, signed with the channel's key.
func (r *Publisher) Targets(ch builders.Channel) []repo.Target {
	mx := r.o.Matrix()
	c := r.targets.Load()
	if c == nil || c.mx != mx {
		c = &matrixTargets{mx: mx}
		seen := map[string]bool{}
		for _, b := range mx.Builders {
			if t := b.Target.String(); !seen[t] {
				seen[t] = true
				c.list = append(c.list, repo.Target{Distro: b.Target.Distro, Version: b.Target.Version, Arch: b.Target.Arch, Format: packageFormat(b.Format)})
			}
		}
		slices.SortFunc(c.list, func(a, b repo.Target) int { return strings.Compare(a.String(), b.String()) })
		r.targets.Store(c)
	}
	out := slices.Clone(c.list)
	for i := range out {
		out[i].Key = ch.Key
	}
	return out
}

func packageFormat(f string) pkgmeta.Format {
	if f == builders.FormatYum {
		return pkgmeta.RPM
	}
	return pkgmeta.Deb
}

// isPackage tells the artifacts the repositories take from the rest
// (logs, reports, and the files a source package lists, which travel with
// its .dsc).
func isPackage(name string) bool {
	ext := strings.ToLower(filepath.Ext(name))
	return ext == ".deb" || ext == ".rpm" || ext == ".dsc"
}

// FinishResult records a worker's result. A successful build's packages are
// published into its target's dev channel first, and the publish is logged
// in the same raft entry as the result: dependents, which wait for the
// result, never start before their dependency's packages are served.
func (r *Publisher) FinishResult(ctx context.Context, res protocol.Result, log *slog.Logger) (state.Outcome, error) {
	node := r.o.Node
	finish := state.Command{Finish: &state.FinishCmd{Result: res, Time: time.Now()}}
	if res.Status != protocol.StatusSuccess || !slices.ContainsFunc(res.Artifacts, func(a protocol.Artifact) bool { return isPackage(a.Name) }) || !node.IsLeader() {
		// A follower's apply fails and the worker repeats to the leader.
		return node.Apply1(ctx, finish)
	}
	id := state.ParseID(res.Build)
	b, err := node.FSM.Build(id)
	if err != nil || b.Attempt != res.Attempt || b.Status != protocol.StatusRunning {
		return node.Apply1(ctx, finish) // stale or unknown: the FSM says what to tell the worker
	}
	if r.off() {
		res.Status, res.Summary = protocol.StatusException, "not published: "+ErrNoRepos.Error()
		log.Warn("build made packages but nothing can publish them", "err", ErrNoRepos)
		return node.Apply1(ctx, state.Command{Finish: &state.FinishCmd{Result: res, Time: time.Now()}})
	}
	flight := fmt.Sprintf("%d/%d", id, res.Attempt)
	if !r.claim(flight) {
		return state.Outcome{}, ErrPublishing
	}
	defer r.release(flight)
	r.mu.Lock()
	defer r.mu.Unlock()
	pc, err := r.publishBuild(ctx, b, res.Artifacts, log)
	if err != nil {
		res.Status = protocol.StatusException
		if errors.Is(err, pkgmeta.ErrCorrupt) || errors.Is(err, pkgmeta.ErrMismatch) || errors.Is(err, pkgmeta.ErrUnsafeName) ||
			errors.Is(err, pkgmeta.ErrFormat) || errors.Is(err, repo.ErrInvalid) || errors.Is(err, ErrRepublish) {
			res.Status = protocol.StatusFailure // the build's own output is at fault
		}
		res.Summary = "not published to " + DevChannel + ": " + err.Error()
		log.Warn("build not published", "status", res.Status, "err", err)
		return node.Apply1(ctx, state.Command{Finish: &state.FinishCmd{Result: res, Time: time.Now()}})
	}
	outs, err := node.Apply(ctx, state.Command{Publish: pc}, finish)
	if err != nil {
		return state.Outcome{}, err
	}
	return outs[1], outs[1].Err
}

// claim marks a result as being published; false when it already is.
func (r *Publisher) claim(key string) bool {
	r.flightMu.Lock()
	defer r.flightMu.Unlock()
	if r.inflight[key] {
		return false
	}
	r.inflight[key] = true
	return true
}

func (r *Publisher) release(key string) {
	r.flightMu.Lock()
	defer r.flightMu.Unlock()
	delete(r.inflight, key)
}

// publishBuild takes a build's packages in and publishes the dev channel
// with ther. On error nothing was published and nothing is to be recorded.
// The caller holds repos.mu.
func (r *Publisher) publishBuild(ctx context.Context, b *state.Build, arts []protocol.Artifact, log *slog.Logger) (*state.PublishCmd, error) {
	ch, err := r.Channel(DevChannel)
	if err != nil {
		return nil, err
	}
	targets := r.Targets(ch)
	ti := slices.IndexFunc(targets, func(t repo.Target) bool { return t.String() == b.Target })
	if ti < 0 {
		return nil, fmt.Errorf("target %s is no longer configured", b.Target)
	}
	target := targets[ti]
	now := time.Now()
	var add []state.RepoPackage
	for _, a := range arts {
		if !isPackage(a.Name) {
			continue
		}
		pkg, err := r.takePackage(ctx, a, arts, target, ch.Key)
		if err != nil {
			return nil, err
		}
		if i := slices.IndexFunc(add, func(p state.RepoPackage) bool { return state.SamePackage(p.Package, pkg) }); i >= 0 {
			return nil, fmt.Errorf("%w: %s and %s are both %s", repo.ErrInvalid, add[i].Package.FileName, a.Name, pkg)
		}
		add = append(add, state.RepoPackage{Build: b.ID, Builder: b.Builder, Package: pkg})
	}
	if err := r.checkRepublish(ch.Name, b.Target, add); err != nil {
		return nil, err
	}
	pc, err := r.publishChannel(ctx, ch, targets, b.Target, add)
	if err != nil {
		return nil, err
	}
	pc.Build, pc.Attempt = b.ID, b.Attempt
	for i := range pc.Add {
		pc.Add[i].Published = pc.Time
	}
	log.Info("published", "channel", ch.Name, "version", pc.Version, "packages", len(add), "dropped", len(pc.Remove[b.Target]), "took", time.Since(now))
	return pc, nil
}

// checkRepublish refuses to list a package whose name, version and
// architecture the channel's target lists already with other bytes: a
// client that installed the first would never be offered the second, and
// two machines with "the same" version would run different code. The
// worker gives a rebuild a higher version (versions: rebuild), so this
// stops only an exact-versions component, a version the packager forgot to
// bump, or a worker that ignored the job's Published list.
func (r *Publisher) checkRepublish(channel, target string, add []state.RepoPackage) error {
	listed := r.o.Node.FSM.RepoPackages(channel, target)
	for _, a := range add {
		for _, p := range listed {
			if state.SamePackage(a.Package, p.Package) && a.Package.SHA256 != p.Package.SHA256 {
				return fmt.Errorf("%w: %s %s %s is published already (build %d) with other contents; bump the version (debian/changelog, the spec's Release) or use versions: rebuild",
					ErrRepublish, a.Package.Name, a.Package.FullVersion(), a.Package.Arch, p.Build)
			}
		}
	}
	return nil
}

// takePackage fetches an artifact from the object store into the artifact
// cache, checks what it is against the build's target and, for an rpm, has
// the agent sign it: workers hold no key.
func (r *Publisher) takePackage(ctx context.Context, a protocol.Artifact, arts []protocol.Artifact, t repo.Target, key string) (*pkgmeta.Package, error) {
	tmp, err := r.fetchArtifact(ctx, a.SHA256, a.Size)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", a.Name, err)
	}
	defer os.Remove(tmp) // after the rename below this removes nothing
	// Artifact names are paths in the workspace (dist/x.deb); each part must
	// be a plain name, and the file's own name says what it is.
	for _, part := range strings.Split(a.Name, "/") {
		if err := pkgmeta.CheckFileName(part); err != nil {
			return nil, fmt.Errorf("artifact %q: %w", a.Name, err)
		}
	}
	name := path.Base(a.Name)
	pkg, err := pkgmeta.ReadFile(tmp, name)
	if err != nil {
		return nil, err
	}
	if err := pkgmeta.Check(pkg, pkgmeta.Expect{Format: t.Format, Arch: t.Arch}); err != nil {
		return nil, fmt.Errorf("built for %s: %w", t, err)
	}
	if pkg.IsSource() {
		if err := r.takeSourceFiles(ctx, pkg, a.Name, arts); err != nil {
			return nil, err
		}
	}
	if pkg.Format == pkgmeta.RPM {
		if err := signing.SignRPMFile(ctx, r.signer, key, tmp); err != nil {
			return nil, fmt.Errorf("sign %s: %w", a.Name, err)
		}
		// Signing changed the header, hence the checksums and header range.
		if pkg, err = pkgmeta.ReadFile(tmp, name); err != nil {
			return nil, fmt.Errorf("read %s after signing: %w", a.Name, err)
		}
		// Other masters fetch the signed file when they lead.
		if err := r.storeArtifact(ctx, tmp, pkg.SHA256); err != nil {
			return nil, err
		}
	}
	if err := os.Rename(tmp, r.artifactPath(pkg.SHA256)); err != nil {
		return nil, fmt.Errorf("keep %s: %w", a.Name, err)
	}
	pkg.Path = ""
	return pkg, nil
}

// takeSourceFiles fetches the files a .dsc lists into the artifact cache.
// Each must be an artifact of the same build, uploaded from the .dsc's own
// directory, with the size and SHA-256 the .dsc gives: a source package
// is published whole and exactly as its .dsc describes it, or not at all.
func (r *Publisher) takeSourceFiles(ctx context.Context, pkg *pkgmeta.Package, dscName string, arts []protocol.Artifact) error {
	dir := path.Dir(dscName)
	for _, f := range pkg.Files {
		i := slices.IndexFunc(arts, func(a protocol.Artifact) bool { return path.Dir(a.Name) == dir && path.Base(a.Name) == f.Name })
		if i < 0 {
			return fmt.Errorf("%w: %s lists %s, which the build did not upload", repo.ErrInvalid, dscName, f.Name)
		}
		if arts[i].SHA256 != f.SHA256 || arts[i].Size != f.Size {
			return fmt.Errorf("%w: %s lists %s with %d bytes and sha256 %s; the build uploaded %d bytes with sha256 %s",
				repo.ErrInvalid, dscName, f.Name, f.Size, f.SHA256, arts[i].Size, arts[i].SHA256)
		}
		if err := r.ensureArtifact(ctx, f.SHA256); err != nil {
			return fmt.Errorf("%s: %w", f.Name, err)
		}
	}
	return nil
}

// fetchArtifact copies an object into a temporary file in the artifact
// cache and verifies it against its name.
func (r *Publisher) fetchArtifact(ctx context.Context, sha string, size int64) (_ string, err error) {
	obj, err := r.o.Objects.Get(ctx, sha)
	if err != nil {
		return "", fmt.Errorf("fetch artifact %s: %w", sha, err)
	}
	defer obj.Close()
	f, err := os.CreateTemp(r.artifacts, ".fetch-*")
	if err != nil {
		return "", fmt.Errorf("fetch artifact %s: %w", sha, err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("fetch artifact %s: %w", sha, cerr)
		}
		if err != nil {
			os.Remove(f.Name())
		}
	}()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), obj)
	if err != nil {
		return "", fmt.Errorf("fetch artifact %s: %w", sha, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sha || (size >= 0 && n != size) {
		return "", fmt.Errorf("fetch artifact %s: store returned %d bytes with sha256 %s", sha, n, got)
	}
	return f.Name(), nil
}

func (r *Publisher) storeArtifact(ctx context.Context, path, sha string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("store signed package: %w", err)
	}
	defer f.Close()
	if _, err := r.o.Objects.Put(ctx, jetstream.ObjectMeta{Name: sha, Description: "signed by the master"}, f); err != nil {
		return fmt.Errorf("store signed package %s: %w", sha, err)
	}
	return nil
}

// ensureArtifact makes sure a listed package's file is in this master's
// cache: a master that just became leader may never have seen it.
func (r *Publisher) ensureArtifact(ctx context.Context, sha string) error {
	if _, err := os.Stat(r.artifactPath(sha)); err == nil {
		return nil
	}
	tmp, err := r.fetchArtifact(ctx, sha, -1)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, r.artifactPath(sha)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("keep artifact %s: %w", sha, err)
	}
	return nil
}

// publishChannel publishes a channel's whole state, with add put into
// target, and returns the command that records it. Retention's drops are
// taken out of state so that state lists what clients see. The caller
// holds repos.mu.
func (r *Publisher) publishChannel(ctx context.Context, ch builders.Channel, targets []repo.Target, target string, add []state.RepoPackage) (*state.PublishCmd, error) {
	cur := r.o.Node.FSM.RepoChannel(ch.Name)
	if !r.cached[ch.Name] {
		// This master may have just become leader, or lost its cache.
		for _, rt := range cur {
			for _, p := range rt.Packages {
				for _, sha := range packageFiles(p.Package) {
					if err := r.ensureArtifact(ctx, sha); err != nil {
						return nil, fmt.Errorf("%s: %w", p.Package.FileName, err)
					}
				}
			}
		}
		r.cached[ch.Name] = true
	}
	contents := repo.ChannelContents{}
	pc := &state.PublishCmd{Channel: ch.Name, Target: target, Add: add}
	for _, t := range targets {
		list := cur[t.String()].Packages
		if t.String() == target {
			list = slices.DeleteFunc(list, func(p state.RepoPackage) bool {
				return slices.ContainsFunc(add, func(a state.RepoPackage) bool { return state.SamePackage(a.Package, p.Package) })
			})
			list = append(list, add...)
		}
		tc := repo.TargetContents{Target: t, Packages: make([]*pkgmeta.Package, 0, len(list))}
		for _, p := range list {
			c := *p.Package
			c.Path = r.artifactPath(c.SHA256)
			c.Files = slices.Clone(c.Files) // state's copy is shared
			for i := range c.Files {
				c.Files[i].Path = r.artifactPath(c.Files[i].SHA256)
			}
			tc.Packages = append(tc.Packages, &c)
		}
		contents.Targets = append(contents.Targets, tc)
		pc.Targets = append(pc.Targets, t.String())
	}
	start := time.Now()
	v, err := r.pub.Publish(ctx, ch.Name, contents)
	if err != nil {
		return nil, err
	}
	// Served from now on: the switch to v is done.
	pc.Version, pc.Time = v.ID, time.Now()
	r.o.Metrics.ObservePublish(pc.Time.Sub(start))
	pc.Remove = dropped(contents, v.Dropped)
	return pc, nil
}

// dropped maps retention's drops, which Version.Dropped names as
// "TARGET: PACKAGE", to the sha256 of each package per target.
func dropped(contents repo.ChannelContents, names []string) map[string][]string {
	if len(names) == 0 {
		return nil
	}
	want := map[string]bool{}
	for _, d := range names {
		want[d] = true
	}
	out := map[string][]string{}
	for _, tc := range contents.Targets {
		t := tc.Target.String()
		for _, p := range tc.Packages {
			if want[t+": "+p.String()] {
				out[t] = append(out[t], p.SHA256)
			}
		}
	}
	return out
}

// Maintain runs while this master leads: it publishes every channel
// from state once (a new channel or target is served, empty, from the
// start; a new leader serves what state lists), then republishes before
// Valid-Until runs out and prunes old pool files. A channel that could not
// be published (signer down or locked) is tried again soon.
func (r *Publisher) Maintain(ctx context.Context) {
	if r.off() {
		return
	}
	const (
		pruneEvery = time.Hour
		retry      = 10 * time.Second
	)
	// Another leader may have listed packages this master never fetched.
	r.mu.Lock()
	clear(r.cached)
	r.mu.Unlock()
	every := min(pruneEvery, cmp.Or(r.o.Matrix().Config.Repos.ValidFor.D()/4, pruneEvery))
	timer := time.NewTimer(0)
	defer timer.Stop()
	lastPrune := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-r.wake:
			timer.Stop()
		}
		next := every
		if !r.refreshRepos(ctx) {
			next = retry
		}
		if time.Since(lastPrune) >= pruneEvery {
			r.pruneRepos(ctx)
			lastPrune = time.Now()
		}
		timer.Reset(next)
	}
}

// refreshRepos publishes each channel whose served version is not the one
// state recorded for all of its targets (startup, new targets, a new
// leader), or, with ValidFor, whose signatures are half way to expiry. It
// reports whether every channel is served as it should be.
func (r *Publisher) refreshRepos(ctx context.Context) bool {
	validFor := r.o.Matrix().Config.Repos.ValidFor.D()
	ok := true
	for _, ch := range r.o.Matrix().Config.Repos.Channels {
		if ctx.Err() != nil {
			return ok
		}
		targets := r.Targets(ch)
		if !r.needsPublish(ch.Name, targets, validFor) {
			continue
		}
		if err := r.republish(ctx, ch, targets); err != nil {
			r.log.Error("channel not published; trying again soon", "channel", ch.Name, "err", err)
			ok = false
		}
	}
	return ok
}

func (r *Publisher) needsPublish(channel string, targets []repo.Target, validFor time.Duration) bool {
	vs, err := r.pub.Versions(channel)
	if err != nil {
		return true
	}
	i := slices.IndexFunc(vs, func(v repo.Version) bool { return v.Current })
	if i < 0 {
		return true
	}
	cur := r.o.Node.FSM.RepoChannel(channel)
	for _, t := range targets {
		rt, ok := cur[t.String()]
		if !ok || rt.Version != vs[i].ID || (validFor > 0 && time.Since(rt.Published) > validFor/2) {
			return true
		}
	}
	return false
}

func (r *Publisher) republish(ctx context.Context, ch builders.Channel, targets []repo.Target) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	pc, err := r.publishChannel(ctx, ch, targets, "", nil)
	if err != nil {
		return err
	}
	if _, err := r.o.Node.Apply1(ctx, state.Command{Publish: pc}); err != nil {
		return fmt.Errorf("record publish of %s: %w", ch.Name, err)
	}
	r.log.Info("channel published", "channel", ch.Name, "version", pc.Version, "targets", len(targets))
	return nil
}

// pruneRepos drops pool files no kept version uses, and cached package
// files no channel lists any more.
func (r *Publisher) pruneRepos(ctx context.Context) {
	r.mu.Lock()
	defer r.mu.Unlock()
	listed := map[string]bool{}
	for _, ch := range r.o.Matrix().Config.Repos.Channels {
		if err := r.pub.Prune(ctx, ch.Name); err != nil {
			r.log.Warn("prune failed", "channel", ch.Name, "err", err)
		}
		for _, rt := range r.o.Node.FSM.RepoChannel(ch.Name) {
			for _, p := range rt.Packages {
				for _, sha := range packageFiles(p.Package) {
					listed[sha] = true
				}
			}
		}
	}
	entries, err := os.ReadDir(r.artifacts)
	if err != nil {
		r.log.Warn("prune artifact cache", "err", err)
		return
	}
	// With mu held no fetch is under way: a temporary file is a crash's.
	for _, e := range entries {
		if listed[e.Name()] {
			continue
		}
		if err := os.Remove(filepath.Join(r.artifacts, e.Name())); err != nil {
			r.log.Warn("prune artifact cache", "err", err)
		}
	}
}

// packageFiles are the sha256 of every file a listed package needs: its
// own, and for a source package those its .dsc lists.
func packageFiles(p *pkgmeta.Package) []string {
	out := []string{p.SHA256}
	for _, f := range p.Files {
		out = append(out, f.SHA256)
	}
	return out
}

// JobRepo tells a job where its target's dev channel is, which key signs
// it, and which versions the builder has there (sorted), so a build's
// chroot can install its dependencies' fresh packages and a rebuild can
// pick a higher version. All empty when nothing is published.
func (r *Publisher) JobRepo(builder, target string) sched.JobRepo {
	if r.off() {
		return sched.JobRepo{}
	}
	ch, err := r.Channel(DevChannel)
	if err != nil {
		return sched.JobRepo{}
	}
	targets := r.Targets(ch)
	i := slices.IndexFunc(targets, func(t repo.Target) bool { return t.String() == target })
	if i < 0 {
		return sched.JobRepo{}
	}
	t := targets[i]
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	pub, err := r.publicKey(ctx, ch.Key)
	if err != nil {
		r.log.Warn("job goes without the dev channel's key", "target", target, "err", err)
		return sched.JobRepo{}
	}
	return sched.JobRepo{URL: r.BaseURL() + "/" + DevChannel + "/" + t.Dir(), Key: string(pub), Published: r.published(builder, target)}
}

// published lists the distinct versions of the packages a builder has in
// the dev channel's target.
func (r *Publisher) published(builder, target string) []string {
	var out []string
	for _, p := range r.o.Node.FSM.RepoPackages(DevChannel, target) {
		by := p.Builder
		if by == "" { // recorded before RepoPackage.Builder
			if b, err := r.o.Node.FSM.Build(p.Build); err == nil {
				by = b.Builder
			}
		}
		if by == builder {
			out = append(out, p.Package.FullVersion())
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// BaseURL is where clients reach /repos: master.public_url, else the
// HTTP listener (a wildcard address names this host).
func (r *Publisher) BaseURL() string {
	if u := r.o.Matrix().Config.Master.PublicURL; u != "" {
		return strings.TrimSuffix(u, "/") + "/repos"
	}
	host, port, err := net.SplitHostPort(r.o.HTTPAddr)
	if err != nil {
		return "http://" + r.o.HTTPAddr + "/repos"
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		if h, err := os.Hostname(); err == nil {
			host = h
		}
	}
	return "http://" + net.JoinHostPort(host, port) + "/repos"
}

// Handler serves the published trees (the master mounts it at /repos).
func (r *Publisher) Handler() http.Handler {
	if r.off() {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, ErrNoRepos.Error(), http.StatusServiceUnavailable)
		})
	}
	return repo.Handler(r.root)
}
