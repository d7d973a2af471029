package master

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
	"github.com/kiln-build/kiln/master/state"
	"github.com/kiln-build/kiln/protocol"
	"github.com/kiln-build/kiln/repo"
	"github.com/kiln-build/kiln/repo/pkgmeta"
	"github.com/kiln-build/kiln/signing"
)

// devChannel gets every good build; dependents build against it.
const devChannel = "dev"

var (
	// ErrNoRepos means this master publishes no repositories: it runs
	// without a signing agent.
	ErrNoRepos = errors.New("repository publishing is off: the master has no signing agent (--signer)")
	// ErrUnknownChannel names a channel the configuration does not have.
	ErrUnknownChannel = errors.New("unknown channel")
	// errPublishing: a result for the same attempt is being published; the
	// worker repeats its result and gets the answer then.
	errPublishing = errors.New("result of this attempt is being published")
)

// repos publishes the farm's channels from the raft state. Only the leader
// publishes; each master serves its own copy under DATA/repos.
type repos struct {
	pub       *repo.Publisher
	signer    signing.Client
	root      string
	artifacts string // DATA/artifacts: package files by sha256, the publisher's source
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

// openRepos connects the signing agent and opens DATA/repos. Without an
// agent the master runs but publishes nothing, and a build that makes
// packages ends as an exception rather than succeed unpublished.
func (m *Master) openRepos(ctx context.Context) error {
	sock := m.o.SignerSocket
	if sock == "" {
		def := filepath.Join(m.o.DataDir, "signer.sock")
		if _, err := os.Stat(def); err == nil {
			sock = def
		}
	}
	if sock == "" {
		m.log.Warn("no signing agent: repositories are not published, and builds that make packages end as exception", "component", "repos", "want", filepath.Join(m.o.DataDir, "signer.sock"))
		return nil
	}
	client, err := signing.DialSocket(sock)
	if err != nil {
		return fmt.Errorf("signing agent at %s: %w", sock, err)
	}
	r := &repos{signer: client, root: filepath.Join(m.o.DataDir, "repos"), artifacts: filepath.Join(m.o.DataDir, "artifacts"),
		log: m.log.With("component", "repos"), cached: map[string]bool{}, inflight: map[string]bool{}, keys: map[string][]byte{}, wake: make(chan struct{}, 1)}
	if err := m.startRepos(ctx, r); err != nil {
		client.Close()
		return err
	}
	m.repos = r
	return nil
}

func (m *Master) startRepos(ctx context.Context, r *repos) error {
	cfg := m.matrix.Load().Config.Repos
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

// refresh wakes the maintenance loop; wakes coalesce.
func (r *repos) refresh() {
	if r == nil {
		return
	}
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *repos) close() {
	if r != nil {
		r.signer.Close()
	}
}

// publicKey returns (and caches) the armored public key of a signing key.
func (r *repos) publicKey(ctx context.Context, key string) ([]byte, error) {
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

func (r *repos) artifactPath(sha string) string { return filepath.Join(r.artifacts, sha) }

// channel returns a configured channel.
func (m *Master) channel(name string) (builders.Channel, error) {
	cfg := m.matrix.Load().Config.Repos
	i := slices.IndexFunc(cfg.Channels, func(c builders.Channel) bool { return c.Name == name })
	if i < 0 {
		return builders.Channel{}, fmt.Errorf("%w %q", ErrUnknownChannel, name)
	}
	return cfg.Channels[i], nil
}

// repoTargets are the repository targets of a channel: one per configured
// target, in the format its builders make, signed with the channel's key.
func (m *Master) repoTargets(ch builders.Channel) []repo.Target {
	mx := m.matrix.Load()
	c := m.repos.targets.Load()
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
		m.repos.targets.Store(c)
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
// (logs, source tarballs, reports).
func isPackage(name string) bool {
	ext := strings.ToLower(filepath.Ext(name))
	return ext == ".deb" || ext == ".rpm"
}

// finishResult records a worker's result. A successful build's packages are
// published into its target's dev channel first, and the publish is logged
// in the same raft entry as the result: dependents, which wait for the
// result, never start before their dependency's packages are served.
func (m *Master) finishResult(ctx context.Context, r protocol.Result, log *slog.Logger) (state.Outcome, error) {
	finish := state.Command{Finish: &state.FinishCmd{Result: r, Time: time.Now()}}
	if r.Status != protocol.StatusSuccess || !slices.ContainsFunc(r.Artifacts, func(a protocol.Artifact) bool { return isPackage(a.Name) }) || !m.node.IsLeader() {
		// A follower's apply fails and the worker repeats to the leader.
		return m.node.Apply1(ctx, finish)
	}
	id := state.ParseID(r.Build)
	b, err := m.node.FSM.Build(id)
	if err != nil || b.Attempt != r.Attempt || b.Status != protocol.StatusRunning {
		return m.node.Apply1(ctx, finish) // stale or unknown: the FSM says what to tell the worker
	}
	if m.repos == nil {
		r.Status, r.Summary = protocol.StatusException, "not published: "+ErrNoRepos.Error()
		log.Warn("build made packages but nothing can publish them", "err", ErrNoRepos)
		return m.node.Apply1(ctx, state.Command{Finish: &state.FinishCmd{Result: r, Time: time.Now()}})
	}
	flight := fmt.Sprintf("%d/%d", id, r.Attempt)
	if !m.repos.claim(flight) {
		return state.Outcome{}, errPublishing
	}
	defer m.repos.release(flight)
	m.repos.mu.Lock()
	defer m.repos.mu.Unlock()
	pc, err := m.publishBuild(ctx, b, r.Artifacts, log)
	if err != nil {
		r.Status = protocol.StatusException
		if errors.Is(err, pkgmeta.ErrCorrupt) || errors.Is(err, pkgmeta.ErrMismatch) || errors.Is(err, pkgmeta.ErrUnsafeName) ||
			errors.Is(err, pkgmeta.ErrFormat) || errors.Is(err, repo.ErrInvalid) {
			r.Status = protocol.StatusFailure // the build's own output is at fault
		}
		r.Summary = "not published to " + devChannel + ": " + err.Error()
		log.Warn("build not published", "status", r.Status, "err", err)
		return m.node.Apply1(ctx, state.Command{Finish: &state.FinishCmd{Result: r, Time: time.Now()}})
	}
	outs, err := m.node.Apply(ctx, state.Command{Publish: pc}, finish)
	if err != nil {
		return state.Outcome{}, err
	}
	return outs[1], outs[1].Err
}

// claim marks a result as being published; false when it already is.
func (r *repos) claim(key string) bool {
	r.flightMu.Lock()
	defer r.flightMu.Unlock()
	if r.inflight[key] {
		return false
	}
	r.inflight[key] = true
	return true
}

func (r *repos) release(key string) {
	r.flightMu.Lock()
	defer r.flightMu.Unlock()
	delete(r.inflight, key)
}

// publishBuild takes a build's packages in and publishes the dev channel
// with them. On error nothing was published and nothing is to be recorded.
// The caller holds repos.mu.
func (m *Master) publishBuild(ctx context.Context, b *state.Build, arts []protocol.Artifact, log *slog.Logger) (*state.PublishCmd, error) {
	ch, err := m.channel(devChannel)
	if err != nil {
		return nil, err
	}
	targets := m.repoTargets(ch)
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
		pkg, err := m.takePackage(ctx, a, target, ch.Key)
		if err != nil {
			return nil, err
		}
		if i := slices.IndexFunc(add, func(p state.RepoPackage) bool { return state.SamePackage(p.Package, pkg) }); i >= 0 {
			return nil, fmt.Errorf("%w: %s and %s are both %s", repo.ErrInvalid, add[i].Package.FileName, a.Name, pkg)
		}
		add = append(add, state.RepoPackage{Build: b.ID, Package: pkg})
	}
	pc, err := m.publishChannel(ctx, ch, targets, b.Target, add)
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

// takePackage fetches an artifact from the object store into the artifact
// cache, checks what it is against the build's target and, for an rpm, has
// the agent sign it: workers hold no key.
func (m *Master) takePackage(ctx context.Context, a protocol.Artifact, t repo.Target, key string) (*pkgmeta.Package, error) {
	tmp, err := m.fetchArtifact(ctx, a.SHA256, a.Size)
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
	if pkg.Format == pkgmeta.RPM {
		if err := signing.SignRPMFile(ctx, m.repos.signer, key, tmp); err != nil {
			return nil, fmt.Errorf("sign %s: %w", a.Name, err)
		}
		// Signing changed the header, hence the checksums and header range.
		if pkg, err = pkgmeta.ReadFile(tmp, name); err != nil {
			return nil, fmt.Errorf("read %s after signing: %w", a.Name, err)
		}
		// Other masters fetch the signed file when they lead.
		if err := m.storeArtifact(ctx, tmp, pkg.SHA256); err != nil {
			return nil, err
		}
	}
	if err := os.Rename(tmp, m.repos.artifactPath(pkg.SHA256)); err != nil {
		return nil, fmt.Errorf("keep %s: %w", a.Name, err)
	}
	pkg.Path = ""
	return pkg, nil
}

// fetchArtifact copies an object into a temporary file in the artifact
// cache and verifies it against its name.
func (m *Master) fetchArtifact(ctx context.Context, sha string, size int64) (_ string, err error) {
	obj, err := m.objects.Get(ctx, sha)
	if err != nil {
		return "", fmt.Errorf("fetch artifact %s: %w", sha, err)
	}
	defer obj.Close()
	f, err := os.CreateTemp(m.repos.artifacts, ".fetch-*")
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

func (m *Master) storeArtifact(ctx context.Context, path, sha string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("store signed package: %w", err)
	}
	defer f.Close()
	if _, err := m.objects.Put(ctx, jetstream.ObjectMeta{Name: sha, Description: "signed by the master"}, f); err != nil {
		return fmt.Errorf("store signed package %s: %w", sha, err)
	}
	return nil
}

// ensureArtifact makes sure a listed package's file is in this master's
// cache: a master that just became leader may never have seen it.
func (m *Master) ensureArtifact(ctx context.Context, sha string) error {
	if _, err := os.Stat(m.repos.artifactPath(sha)); err == nil {
		return nil
	}
	tmp, err := m.fetchArtifact(ctx, sha, -1)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, m.repos.artifactPath(sha)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("keep artifact %s: %w", sha, err)
	}
	return nil
}

// publishChannel publishes a channel's whole state, with add put into
// target, and returns the command that records it. Retention's drops are
// taken out of state so that state lists what clients see. The caller
// holds repos.mu.
func (m *Master) publishChannel(ctx context.Context, ch builders.Channel, targets []repo.Target, target string, add []state.RepoPackage) (*state.PublishCmd, error) {
	cur := m.node.FSM.RepoChannel(ch.Name)
	if !m.repos.cached[ch.Name] {
		// This master may have just become leader, or lost its cache.
		for _, rt := range cur {
			for _, p := range rt.Packages {
				if err := m.ensureArtifact(ctx, p.Package.SHA256); err != nil {
					return nil, fmt.Errorf("%s: %w", p.Package.FileName, err)
				}
			}
		}
		m.repos.cached[ch.Name] = true
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
			c.Path = m.repos.artifactPath(c.SHA256)
			tc.Packages = append(tc.Packages, &c)
		}
		contents.Targets = append(contents.Targets, tc)
		pc.Targets = append(pc.Targets, t.String())
	}
	start := time.Now()
	v, err := m.repos.pub.Publish(ctx, ch.Name, contents)
	if err != nil {
		return nil, err
	}
	// Served from now on: the switch to v is done.
	pc.Version, pc.Time = v.ID, time.Now()
	m.ui.metrics.ObservePublish(pc.Time.Sub(start))
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

// maintainRepos runs while this master leads: it publishes every channel
// from state once (a new channel or target is served, empty, from the
// start; a new leader serves what state lists), then republishes before
// Valid-Until runs out and prunes old pool files. A channel that could not
// be published (signer down or locked) is tried again soon.
func (m *Master) maintainRepos(ctx context.Context) {
	if m.repos == nil {
		return
	}
	const (
		pruneEvery = time.Hour
		retry      = 10 * time.Second
	)
	// Another leader may have listed packages this master never fetched.
	m.repos.mu.Lock()
	clear(m.repos.cached)
	m.repos.mu.Unlock()
	every := min(pruneEvery, cmp.Or(m.matrix.Load().Config.Repos.ValidFor.D()/4, pruneEvery))
	timer := time.NewTimer(0)
	defer timer.Stop()
	lastPrune := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-m.repos.wake:
			timer.Stop()
		}
		next := every
		if !m.refreshRepos(ctx) {
			next = retry
		}
		if time.Since(lastPrune) >= pruneEvery {
			m.pruneRepos(ctx)
			lastPrune = time.Now()
		}
		timer.Reset(next)
	}
}

// refreshRepos publishes each channel whose served version is not the one
// state recorded for all of its targets (startup, new targets, a new
// leader), or, with ValidFor, whose signatures are half way to expiry. It
// reports whether every channel is served as it should be.
func (m *Master) refreshRepos(ctx context.Context) bool {
	validFor := m.matrix.Load().Config.Repos.ValidFor.D()
	ok := true
	for _, ch := range m.matrix.Load().Config.Repos.Channels {
		if ctx.Err() != nil {
			return ok
		}
		targets := m.repoTargets(ch)
		if !m.needsPublish(ch.Name, targets, validFor) {
			continue
		}
		if err := m.republish(ctx, ch, targets); err != nil {
			m.repos.log.Error("channel not published; trying again soon", "channel", ch.Name, "err", err)
			ok = false
		}
	}
	return ok
}

func (m *Master) needsPublish(channel string, targets []repo.Target, validFor time.Duration) bool {
	vs, err := m.repos.pub.Versions(channel)
	if err != nil {
		return true
	}
	i := slices.IndexFunc(vs, func(v repo.Version) bool { return v.Current })
	if i < 0 {
		return true
	}
	cur := m.node.FSM.RepoChannel(channel)
	for _, t := range targets {
		rt, ok := cur[t.String()]
		if !ok || rt.Version != vs[i].ID || (validFor > 0 && time.Since(rt.Published) > validFor/2) {
			return true
		}
	}
	return false
}

func (m *Master) republish(ctx context.Context, ch builders.Channel, targets []repo.Target) error {
	m.repos.mu.Lock()
	defer m.repos.mu.Unlock()
	pc, err := m.publishChannel(ctx, ch, targets, "", nil)
	if err != nil {
		return err
	}
	if _, err := m.node.Apply1(ctx, state.Command{Publish: pc}); err != nil {
		return fmt.Errorf("record publish of %s: %w", ch.Name, err)
	}
	m.repos.log.Info("channel published", "channel", ch.Name, "version", pc.Version, "targets", len(targets))
	return nil
}

// pruneRepos drops pool files no kept version uses, and cached package
// files no channel lists any more.
func (m *Master) pruneRepos(ctx context.Context) {
	m.repos.mu.Lock()
	defer m.repos.mu.Unlock()
	listed := map[string]bool{}
	for _, ch := range m.matrix.Load().Config.Repos.Channels {
		if err := m.repos.pub.Prune(ctx, ch.Name); err != nil {
			m.repos.log.Warn("prune failed", "channel", ch.Name, "err", err)
		}
		for _, rt := range m.node.FSM.RepoChannel(ch.Name) {
			for _, p := range rt.Packages {
				listed[p.Package.SHA256] = true
			}
		}
	}
	entries, err := os.ReadDir(m.repos.artifacts)
	if err != nil {
		m.repos.log.Warn("prune artifact cache", "err", err)
		return
	}
	// With mu held no fetch is under way: a temporary file is a crash's.
	for _, e := range entries {
		if listed[e.Name()] {
			continue
		}
		if err := os.Remove(filepath.Join(m.repos.artifacts, e.Name())); err != nil {
			m.repos.log.Warn("prune artifact cache", "err", err)
		}
	}
}

// repoForJob tells a job where its target's dev channel is and which key
// signs it, so a build's chroot can install its dependencies' fresh
// packages. Both are empty when nothing is published.
func (m *Master) repoForJob(target string) (url, key string) {
	if m.repos == nil {
		return "", ""
	}
	ch, err := m.channel(devChannel)
	if err != nil {
		return "", ""
	}
	targets := m.repoTargets(ch)
	i := slices.IndexFunc(targets, func(t repo.Target) bool { return t.String() == target })
	if i < 0 {
		return "", ""
	}
	t := targets[i]
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	pub, err := m.repos.publicKey(ctx, ch.Key)
	if err != nil {
		m.repos.log.Warn("job goes without the dev channel's key", "target", target, "err", err)
		return "", ""
	}
	return m.reposBaseURL() + "/" + devChannel + "/" + t.Dir(), string(pub)
}

// reposBaseURL is where clients reach /repos: master.public_url, else the
// HTTP listener (a wildcard address names this host).
func (m *Master) reposBaseURL() string {
	if u := m.matrix.Load().Config.Master.PublicURL; u != "" {
		return strings.TrimSuffix(u, "/") + "/repos"
	}
	host, port, err := net.SplitHostPort(m.HTTPAddr())
	if err != nil {
		return "http://" + m.HTTPAddr() + "/repos"
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		if h, err := os.Hostname(); err == nil {
			host = h
		}
	}
	return "http://" + net.JoinHostPort(host, port) + "/repos"
}

// mountRepos serves the published trees under /repos/.
func (m *Master) mountRepos() {
	if m.repos == nil {
		m.mux.Handle("/repos/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, ErrNoRepos.Error(), http.StatusServiceUnavailable)
		}))
		return
	}
	m.mux.Handle("/repos/", http.StripPrefix("/repos", repo.Handler(m.repos.root)))
}
