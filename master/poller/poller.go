// Package poller watches repositories by listing their refs (git ls-remote,
// no clone) at an interval, for sites where nothing may dial into the farm
// and as a safety net for lost webhooks. One poller serves every component
// that builds from the same repository.
package poller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/storage/memory"

	"github.com/kiln-build/kiln/master/hooks"
)

// Defaults for Options' zero fields.
const (
	DefaultInterval   = time.Minute
	DefaultJitter     = 0.1
	DefaultMaxBackoff = 30 * time.Minute
	DefaultTimeout    = 30 * time.Second
	DefaultParallel   = 8
)

// ErrRunning is returned by Run when the poller already runs.
var ErrRunning = errors.New("poller already running")

// Repo is one polled repository and the components built from it.
type Repo struct {
	URL        string
	Components []hooks.Component
	// Interval overrides Options.Interval for this repository (the config
	// repository's own poll setting, say).
	Interval time.Duration
}

// Group makes one Repo per repository out of components, merging those
// whose URLs RepoKey says are the same repository.
func Group(cs []hooks.Component) ([]Repo, error) {
	var out []Repo
	index := make(map[string]int)
	for _, c := range cs {
		key, err := hooks.RepoKey(c.Repo)
		if err != nil {
			return nil, fmt.Errorf("group component %s: %w", c.Name, err)
		}
		i, ok := index[key]
		if !ok {
			i = len(out)
			index[key] = i
			out = append(out, Repo{URL: c.Repo})
		}
		out[i].Components = append(out[i].Components, c)
	}
	return out, nil
}

// Options configure a Poller.
type Options struct {
	// Sink receives one Change per component a moved ref builds. On error
	// the ref is not recorded, so the next poll offers it again.
	Sink func(context.Context, hooks.Change) error
	// Interval between polls of one repository.
	Interval time.Duration
	// Jitter spreads polls by ± this fraction of the delay, so that
	// pollers started together do not hit a forge together. Negative
	// disables it.
	Jitter float64
	// MaxBackoff caps the delay after consecutive failures, which doubles
	// from Interval.
	MaxBackoff time.Duration
	// Timeout bounds one ls-remote.
	Timeout time.Duration
	// Parallel bounds the ls-remotes in flight, so that a farm of many
	// repositories does not open them all at once when the master starts.
	Parallel int
	// EmitOnFirstSight reports every branch and tag found by a repository's
	// first successful poll as a change. By default the first poll only
	// records them: the poller cannot tell what was already built.
	EmitOnFirstSight bool
	// Seed, when set, is asked once per repository, before its first poll
	// is compared, for the revisions of its refs already reported (the
	// master keeps them in its replicated state, so a new leader's pollers
	// carry on where the old leader's stopped). A seeded ref found at
	// another revision is a change even on first sight; refs Seed does not
	// name follow EmitOnFirstSight.
	Seed func(repoURL string) map[string]string
	// Auth returns credentials for a repository; nil means anonymous.
	Auth   func(repoURL string) (transport.AuthMethod, error)
	Logger *slog.Logger
}

// Poller owns one goroutine per repository while Run runs.
type Poller struct {
	opts  Options
	slots chan struct{} // one token per ls-remote in flight

	mu     sync.Mutex
	repos  map[string]*repoPoller // by hooks.RepoKey
	runCtx context.Context        // nil unless Run is running
	wg     sync.WaitGroup
}

// New returns a Poller with no repositories; call Update to add some.
func New(o Options) (*Poller, error) {
	if o.Sink == nil {
		return nil, errors.New("new poller: no sink")
	}
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.Jitter == 0 {
		o.Jitter = DefaultJitter
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Parallel <= 0 {
		o.Parallel = DefaultParallel
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Poller{opts: o, slots: make(chan struct{}, o.Parallel), repos: make(map[string]*repoPoller)}, nil
}

// repoPoller is the state of one repository's poll loop.
type repoPoller struct {
	key    string
	poke   chan struct{} // capacity 1: pokes during a poll coalesce
	cancel context.CancelFunc

	mu         sync.Mutex
	repo       Repo
	refs       map[string]string // full ref name → revision (tags peeled)
	polled     bool              // a poll succeeded once
	polls      int
	failures   int
	lastPoll   time.Time
	nextPoll   time.Time
	lastChange time.Time
	lastErr    error
}

func (rp *repoPoller) hasPolled() bool {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	return rp.polled
}

// Update makes the polled set match repos: new repositories start, removed
// ones stop, and the others keep their state and schedule, taking the new
// components and interval from their next poll on. A bad URL changes nothing.
func (p *Poller) Update(repos []Repo) error {
	want := make(map[string]Repo, len(repos))
	for _, r := range repos {
		key, err := hooks.RepoKey(r.URL)
		if err != nil {
			return fmt.Errorf("update pollers: %w", err)
		}
		if _, dup := want[key]; dup {
			return fmt.Errorf("update pollers: repository %s listed twice (use Group)", r.URL)
		}
		want[key] = r
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for key, rp := range p.repos {
		if _, ok := want[key]; !ok {
			if rp.cancel != nil {
				rp.cancel()
			}
			delete(p.repos, key)
			p.opts.Logger.Info("poller removed", "repo", key)
		}
	}
	for key, r := range want {
		if rp, ok := p.repos[key]; ok {
			rp.mu.Lock()
			rp.repo = r
			rp.mu.Unlock()
			continue
		}
		rp := &repoPoller{key: key, repo: r, poke: make(chan struct{}, 1), refs: make(map[string]string)}
		p.repos[key] = rp
		if p.runCtx != nil {
			p.start(rp)
		}
		p.opts.Logger.Info("poller added", "repo", key)
	}
	return nil
}

// start runs rp's loop under Run's context; p.mu is held.
func (p *Poller) start(rp *repoPoller) {
	ctx, cancel := context.WithCancel(p.runCtx)
	rp.cancel = cancel
	p.wg.Go(func() { p.loop(ctx, rp) })
}

// Run polls until ctx ends, then stops every loop and waits for them.
func (p *Poller) Run(ctx context.Context) error {
	p.mu.Lock()
	if p.runCtx != nil {
		p.mu.Unlock()
		return ErrRunning
	}
	p.runCtx = ctx
	for _, rp := range p.repos {
		p.start(rp)
	}
	p.mu.Unlock()

	<-ctx.Done()
	p.mu.Lock()
	p.runCtx = nil
	for _, rp := range p.repos {
		rp.cancel()
		rp.cancel = nil
	}
	p.mu.Unlock()
	p.wg.Wait()
	return nil
}

// Poke asks for an immediate poll of repoURL; unknown URLs are ignored.
func (p *Poller) Poke(repoURL string) {
	if rp := p.lookup(repoURL); rp != nil {
		select {
		case rp.poke <- struct{}{}:
		default:
		}
	}
}

// Notify records that ref of repoURL is at revision because a webhook
// already reported it, so this poller does not report it a second time,
// and polls at once. Its signature fits hooks.Options.Notify.
func (p *Poller) Notify(repoURL, ref, revision string) {
	rp := p.lookup(repoURL)
	if rp == nil {
		return
	}
	rp.mu.Lock()
	rp.refs[ref] = revision
	rp.mu.Unlock()
	p.Poke(repoURL)
}

func (p *Poller) lookup(repoURL string) *repoPoller {
	key, err := hooks.RepoKey(repoURL)
	if err != nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.repos[key]
}

// Status describes one repository's poller for the web page and API.
type Status struct {
	URL        string
	Key        string
	Components []string
	Refs       int
	LastPoll   time.Time
	NextPoll   time.Time
	LastChange time.Time
	LastError  string
	Failures   int // consecutive; 0 after a good poll
	Polls      int // attempts since the poller started
}

// Status reports every poller, ordered by key.
func (p *Poller) Status() []Status {
	p.mu.Lock()
	rps := make([]*repoPoller, 0, len(p.repos))
	for _, rp := range p.repos {
		rps = append(rps, rp)
	}
	p.mu.Unlock()
	out := make([]Status, 0, len(rps))
	for _, rp := range rps {
		rp.mu.Lock()
		s := Status{
			URL:        rp.repo.URL,
			Key:        rp.key,
			Refs:       len(rp.refs),
			LastPoll:   rp.lastPoll,
			NextPoll:   rp.nextPoll,
			LastChange: rp.lastChange,
			Failures:   rp.failures,
			Polls:      rp.polls,
		}
		if rp.lastErr != nil {
			s.LastError = rp.lastErr.Error()
		}
		for _, c := range rp.repo.Components {
			s.Components = append(s.Components, c.Name)
		}
		rp.mu.Unlock()
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b Status) int { return strings.Compare(a.Key, b.Key) })
	return out
}

func (p *Poller) loop(ctx context.Context, rp *repoPoller) {
	for {
		delay := p.pollOnce(ctx, rp)
		if ctx.Err() != nil {
			return
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-rp.poke:
			t.Stop()
		case <-t.C:
		}
	}
}

// pollOnce lists the remote, reports what moved and returns the delay
// until the next poll.
func (p *Poller) pollOnce(ctx context.Context, rp *repoPoller) time.Duration {
	rp.mu.Lock()
	repo := rp.repo
	rp.mu.Unlock()
	interval := repo.Interval
	if interval <= 0 {
		interval = p.opts.Interval
	}

	refs, head, err := p.list(ctx, repo.URL)
	if err == nil {
		err = p.report(ctx, rp, repo, refs, head)
	}
	if ctx.Err() != nil {
		return 0
	}

	rp.mu.Lock()
	defer rp.mu.Unlock()
	rp.lastPoll = time.Now()
	rp.polls++
	rp.lastErr = err
	if err != nil {
		rp.failures++
	} else {
		rp.failures = 0
	}
	delay := jitter(backoff(interval, p.opts.MaxBackoff, rp.failures), p.opts.Jitter)
	rp.nextPoll = rp.lastPoll.Add(delay)
	if err != nil {
		p.opts.Logger.Warn("poll failed", "repo", rp.key, "failures", rp.failures, "retry_in", delay, "err", err)
	}
	return delay
}

// list runs ls-remote and returns branch and tag revisions (annotated tags
// peeled to their commit) and the default branch HEAD points at, if the
// server says.
func (p *Poller) list(ctx context.Context, url string) (map[string]string, string, error) {
	select {
	case p.slots <- struct{}{}:
		defer func() { <-p.slots }()
	case <-ctx.Done():
		return nil, "", ctx.Err()
	}
	ctx, cancel := context.WithTimeout(ctx, p.opts.Timeout)
	defer cancel()
	opts := &git.ListOptions{PeelingOption: git.AppendPeeled}
	if p.opts.Auth != nil {
		auth, err := p.opts.Auth(url)
		if err != nil {
			return nil, "", fmt.Errorf("credentials for %s: %w", url, err)
		}
		opts.Auth = auth
	}
	remote := git.NewRemote(memory.NewStorage(), &config.RemoteConfig{Name: "origin", URLs: []string{url}})
	listed, err := remote.ListContext(ctx, opts)
	if errors.Is(err, transport.ErrEmptyRemoteRepository) {
		return map[string]string{}, "", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("ls-remote %s: %w", url, err)
	}
	refs := make(map[string]string)
	peeled := make(map[string]string)
	head := ""
	for _, r := range listed {
		name := r.Name().String()
		switch {
		case r.Name() == plumbing.HEAD && r.Type() == plumbing.SymbolicReference:
			head, _, _ = hooks.ParseRef(r.Target().String())
		case r.Type() != plumbing.HashReference:
		case strings.HasSuffix(name, "^{}"):
			peeled[strings.TrimSuffix(name, "^{}")] = r.Hash().String()
		default:
			if _, _, ok := hooks.ParseRef(name); ok {
				refs[name] = r.Hash().String()
			}
		}
	}
	for name, commit := range peeled {
		if _, ok := refs[name]; ok {
			refs[name] = commit
		}
	}
	return refs, head, nil
}

// report compares refs with what rp saw last, hands the moves to the sink
// and records every ref the sink accepted.
func (p *Poller) report(ctx context.Context, rp *repoPoller, repo Repo, refs map[string]string, head string) error {
	type move struct{ ref, rev string }
	var moves []move
	var seed map[string]string
	if p.opts.Seed != nil && !rp.hasPolled() {
		seed = p.opts.Seed(repo.URL)
	}
	rp.mu.Lock()
	quiet := !rp.polled && !p.opts.EmitOnFirstSight
	for name, rev := range seed {
		if _, known := rp.refs[name]; !known {
			rp.refs[name] = rev
		}
	}
	for name := range rp.refs {
		if _, ok := refs[name]; !ok {
			delete(rp.refs, name)
		}
	}
	for name, rev := range refs {
		old, known := rp.refs[name]
		switch {
		case old == rev:
		case quiet && !known:
			rp.refs[name] = rev
		default:
			moves = append(moves, move{name, rev})
		}
	}
	rp.polled = true
	rp.mu.Unlock()
	slices.SortFunc(moves, func(a, b move) int { return strings.Compare(a.ref, b.ref) })

	var errs []error
	for _, m := range moves {
		branch, tag, _ := hooks.ParseRef(m.ref)
		accepted, emitted := true, false
		for _, c := range repo.Components {
			if !c.Wants(branch, tag, head) {
				continue
			}
			err := p.opts.Sink(ctx, hooks.Change{
				Component: c.Name,
				RepoURL:   c.Repo,
				Branch:    branch,
				Tag:       tag,
				Revision:  m.rev,
				Source:    hooks.Source{Kind: hooks.KindPoller, Poller: rp.key},
				Time:      time.Now(),
			})
			if err != nil {
				accepted = false
				errs = append(errs, fmt.Errorf("report %s %s to %s: %w", rp.key, m.ref, c.Name, err))
				break
			}
			emitted = true
			p.opts.Logger.Info("change seen by poller", "repo", rp.key, "ref", m.ref, "revision", m.rev, "component", c.Name)
		}
		if accepted {
			rp.mu.Lock()
			rp.refs[m.ref] = m.rev
			if emitted {
				rp.lastChange = time.Now()
			}
			rp.mu.Unlock()
		}
	}
	return errors.Join(errs...)
}

// backoff is interval doubled per consecutive failure, capped at limit (but
// never below interval).
func backoff(interval, limit time.Duration, failures int) time.Duration {
	limit = max(limit, interval)
	d := interval
	for range failures {
		if d >= limit/2 {
			return limit
		}
		d *= 2
	}
	return d
}

func jitter(d time.Duration, frac float64) time.Duration {
	if frac <= 0 {
		return d
	}
	return d + time.Duration((rand.Float64()*2-1)*frac*float64(d))
}
