package confsrc

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"time"

	"github.com/kiln-build/kiln/builders"
	"github.com/kiln-build/kiln/master/api"
	"github.com/kiln-build/kiln/master/hooks"
	"github.com/kiln-build/kiln/master/poller"
)

// DefaultWatch is how often a local config's files are looked at.
const DefaultWatch = time.Second

// An Applier makes a validated config the running one. It returns an error
// having changed nothing when the config cannot be applied (a secret it
// names cannot be read): the farm keeps the last good one. dir resolves the
// config's relative paths.
type Applier func(ctx context.Context, cfg *builders.Config, mx *builders.Matrix, dir, version string) (Applied, error)

// Applied is what applying a config changed.
type Applied struct {
	Old  *builders.Matrix
	Diff builders.MatrixDiff
	// Cancelled counts queued requests of removed builders.
	Cancelled int
}

// Source is the running config's origin and its reload history.
type Source struct {
	conf  *configState
	log   *slog.Logger
	apply Applier
	watch time.Duration
	// fetch reports the config repository poller's state, when it has one.
	fetch func() (poller.Status, bool)
}

// Open loads the config the master starts with, resolving a bootstrap file
// whose config lives in git; o is completed with what the bootstrap file
// says of restart-only settings, and o.ConfigPath names the config loaded.
func Open(o *Settings) (*Source, *builders.Config, *builders.Matrix, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	cfg, mx, src, err := openConfig(o)
	if err != nil {
		return nil, nil, nil, err
	}
	version, err := src.version()
	if err != nil {
		return nil, nil, nil, err
	}
	s := &Source{conf: &configState{src: src, stamp: src.stamp()}, log: o.Logger, watch: DefaultWatch}
	s.conf.status = api.ConfigStatus{
		Source: cmp.Or(src.git.Git, src.local), Branch: src.git.Branch, Path: src.git.Path,
		Commit: version, LoadedAt: time.Now(), Builders: len(mx.Builders),
	}
	if src.repo != nil {
		if err := src.setGood(version); err != nil {
			return nil, nil, nil, err
		}
	}
	return s, cfg, mx, nil
}

// Git is the config repository; zero for a local config.
func (s *Source) Git() builders.ConfigSource { return s.conf.src.git }

// Dir is the config file or directory loaded, inside the checkout for git.
func (s *Source) Dir() string { return s.conf.src.local }

// Start sets what applies new versions, how the config repository's poller
// is doing, and how often a local config is looked at (0: DefaultWatch).
// It is called once, before Reload or Watch.
func (s *Source) Start(apply Applier, fetch func() (poller.Status, bool), watch time.Duration) {
	s.apply, s.fetch = apply, fetch
	if watch > 0 {
		s.watch = watch
	}
}

// Reload applies the config again if it changed: a local config is read
// from disk, a config repository is fetched. A refused config leaves the
// farm on the last good one and comes back wrapped in ErrConfigRefused.
func (s *Source) Reload(ctx context.Context) error {
	if s.conf.src.repo != nil {
		return s.reloadGit(ctx)
	}
	return s.reloadLocal(ctx)
}

func (s *Source) reloadLocal(ctx context.Context) error {
	c := s.conf
	c.mu.Lock()
	defer c.mu.Unlock()
	seen := time.Now()
	c.stamp = c.src.stamp()
	ver, err := c.src.version()
	if err != nil {
		return s.refuse("", err)
	}
	if ver == c.status.Commit {
		// Back to the version that runs: nothing is refused any more.
		c.status.Error = nil
		return nil
	}
	return s.load(ctx, ver, seen)
}

// reloadGit fetches the config branch and applies its head. A fetch error
// is returned as it is, for the config poller to retry with backoff.
func (s *Source) reloadGit(ctx context.Context) error {
	c := s.conf
	c.mu.Lock()
	defer c.mu.Unlock()
	seen := time.Now()
	head, err := c.src.fetch(ctx)
	if err != nil {
		return err
	}
	if head == c.status.Commit || (c.status.Error != nil && c.status.Error.Commit == head) {
		return nil
	}
	if err := c.src.checkoutRev(head); err != nil {
		return s.refuse(head, err)
	}
	return s.load(ctx, head, seen)
}

// load validates the config now on disk with the same code as kiln
// checkconfig and, if it is good, has it applied. c.mu is held.
func (s *Source) load(ctx context.Context, version string, seen time.Time) error {
	dir := s.conf.src.local
	cfg, mx, err := builders.LoadMatrix(dir)
	if err != nil {
		return s.refuse(version, err)
	}
	done, err := s.apply(ctx, cfg, mx, dir, version)
	if err != nil {
		return s.refuse(version, err)
	}
	if s.conf.src.repo != nil {
		if err := s.conf.src.setGood(version); err != nil {
			s.log.Warn("config applied", "err", err)
		}
	}
	took := time.Since(seen)
	st := &s.conf.status
	st.Commit, st.LoadedAt, st.Took, st.Error = version, time.Now(), took.String(), nil
	st.Builders = len(mx.Builders)
	d := done.Diff
	st.Added, st.Removed, st.Changed, st.Cancelled = len(d.Added), len(d.Removed), len(d.Changed), done.Cancelled
	s.log.Info("config applied", "version", version, "builders", len(mx.Builders),
		"added", len(d.Added), "removed", len(d.Removed), "changed", len(d.Changed), "cancelled", done.Cancelled, "took", took)
	if done.Old != nil {
		if keys := restartOnly(done.Old.Config.Master, cfg.Master); len(keys) > 0 {
			s.log.Warn("config changes that take effect on restart only", "keys", strings.Join(keys, ", "))
		}
	}
	return nil
}

// refuse records why version is not applied and returns that as an error
// wrapping ErrConfigRefused. c.mu is held.
func (s *Source) refuse(version string, err error) error {
	e := &api.ConfigError{Commit: version, At: time.Now(), Message: s.relative(err.Error())}
	var list builders.Errors
	var one *builders.Error
	switch {
	case errors.As(err, &list) && len(list) > 0:
		one = list[0]
	case errors.As(err, &one):
	}
	if one != nil {
		e.File, e.Line, e.Column = s.relative(one.File), one.Line, one.Column
	}
	s.conf.status.Error = e
	s.log.Error("config refused: the farm keeps running the last good config",
		"version", version, "active", s.conf.status.Commit, "file", e.File, "line", e.Line, "err", e.Message)
	return fmt.Errorf("%w: %s: %w", ErrConfigRefused, version, err)
}

// relative drops the checkout's directory from paths in messages, so they
// name files as the repository does.
func (s *Source) relative(msg string) string {
	if dir := s.conf.src.checkout; dir != "" {
		return strings.ReplaceAll(msg, dir+"/", "")
	}
	return msg
}

// ShortVersion is a config version as messages name it.
func ShortVersion(v string) string {
	if len(v) > 12 && !strings.HasPrefix(v, "sha256:") {
		return v[:12]
	}
	return v
}

// restartOnly lists the master settings that differ and that the running
// master cannot change: listeners, the data dir, timeouts the scheduler was
// built with and the pollers' shared options.
func restartOnly(old, new builders.Master) []string {
	var keys []string
	for _, f := range []struct {
		key      string
		old, new any
	}{
		{"master.http", old.HTTP, new.HTTP},
		{"master.nats", old.NATS, new.NATS},
		{"master.nats_url", old.NATSURL, new.NATSURL},
		{"master.data_dir", old.DataDir, new.DataDir},
		{"master.heartbeat_timeout", old.HeartbeatTimeout, new.HeartbeatTimeout},
		{"master.max_attempts", old.MaxAttempts, new.MaxAttempts},
		{"master.poll.jitter_percent", old.Poll.JitterPercent, new.Poll.JitterPercent},
		{"master.poll.max_backoff", old.Poll.MaxBackoff, new.Poll.MaxBackoff},
		{"master.poll.emit_on_first_sight", old.Poll.EmitOnFirstSight, new.Poll.EmitOnFirstSight},
		{"master.config", old.Config, new.Config},
	} {
		if !reflect.DeepEqual(f.old, f.new) {
			keys = append(keys, f.key)
		}
	}
	return keys
}

// Status reports the active config, the last refusal and the health of the
// config repository's poller.
func (s *Source) Status() api.ConfigStatus {
	c := s.conf
	c.mu.Lock()
	st := c.status
	c.mu.Unlock()
	if st.Error != nil {
		e := *st.Error
		st.Error = &e
	}
	if s.fetch != nil {
		if ps, ok := s.fetch(); ok {
			st.Fetch = &api.FetchStatus{LastPoll: ps.LastPoll, NextPoll: ps.NextPoll, Failures: ps.Failures, LastError: s.relative(ps.LastError)}
		}
	}
	return st
}

// Watch looks at a local config's files until ctx ends and reloads when
// they change. (A config repository is polled by intake instead.)
func (s *Source) Watch(ctx context.Context) {
	t := time.NewTicker(s.watch)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.conf.mu.Lock()
		moved := s.conf.src.stamp() != s.conf.stamp
		s.conf.mu.Unlock()
		if !moved {
			continue
		}
		if err := s.reloadLocal(ctx); err != nil && !errors.Is(err, ErrConfigRefused) {
			s.log.Warn("config reload", "err", err)
		}
	}
}

// Change is the sink of the config repository's poller and of webhooks
// for it: it fetches and applies the branch head. A refused config is not
// an error here, so that neither retries it: the next commit will be looked
// at.
func (s *Source) Change(ctx context.Context, c hooks.Change) error {
	src := s.conf.src
	if src.repo == nil {
		s.log.Info("push to the config repository ignored: this master reads a local config", "revision", c.Revision)
		return nil
	}
	if c.Branch != src.git.Branch {
		return nil
	}
	err := s.reloadGit(ctx)
	if errors.Is(err, ErrConfigRefused) {
		return nil
	}
	return err
}
