package master

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/kiln-build/kiln/builders"
	"github.com/kiln-build/kiln/master/hooks"
	"github.com/kiln-build/kiln/master/natsd"
	"github.com/kiln-build/kiln/master/state"
	"github.com/kiln-build/kiln/protocol"
)

// DefaultConfigWatch is how often a local config's files are looked at.
const DefaultConfigWatch = time.Second

// Reload applies the config again if it changed: a local config is read
// from disk, a config repository is fetched. A refused config leaves the
// farm on the last good one and comes back wrapped in ErrConfigRefused.
func (m *Master) Reload(ctx context.Context) error {
	if m.conf.src.repo != nil {
		return m.reloadGit(ctx)
	}
	return m.reloadLocal(ctx)
}

func (m *Master) reloadLocal(ctx context.Context) error {
	c := m.conf
	c.mu.Lock()
	defer c.mu.Unlock()
	seen := time.Now()
	c.stamp = c.src.stamp()
	ver, err := c.src.version()
	if err != nil {
		return m.refuse("", err)
	}
	if ver == c.status.Commit {
		// Back to the version that runs: nothing is refused any more.
		c.status.Error = nil
		return nil
	}
	return m.load(ctx, ver, seen)
}

// reloadGit fetches the config branch and applies its head. A fetch error
// is returned as it is, for the config poller to retry with backoff.
func (m *Master) reloadGit(ctx context.Context) error {
	c := m.conf
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
		return m.refuse(head, err)
	}
	return m.load(ctx, head, seen)
}

// load validates the config now on disk with the same code as kiln
// checkconfig and, if it is good, swaps it in. c.mu is held.
func (m *Master) load(ctx context.Context, version string, seen time.Time) error {
	cfg, mx, err := builders.LoadMatrix(m.conf.src.local)
	if err != nil {
		return m.refuse(version, err)
	}
	plan, err := m.planIntake(cfg, m.conf.src.local)
	if err != nil {
		return m.refuse(version, err)
	}
	var users []natsd.User
	if m.nats != nil {
		if users, err = m.natsUsers(cfg, m.conf.src.local); err != nil {
			return m.refuse(version, err)
		}
	}

	if !reflect.DeepEqual(cfg.Users, m.matrix.Load().Config.Users) {
		// Web and API users; a token that cannot be read refuses the config.
		if err := m.setUsers(cfg.Users, m.conf.src.local); err != nil {
			return m.refuse(version, err)
		}
	}
	old := m.matrix.Load()
	diff := builders.Diff(old, mx)
	m.matrix.Store(mx)
	if err := m.intake.apply(plan); err != nil {
		m.log.Error("config applied but change intake not updated", "err", err)
	}
	if users != nil {
		// New workers must be able to log in; a failure here leaves the old
		// users, which the status and log say.
		if err := m.nats.SetUsers(users); err != nil {
			m.log.Error("config applied but nats users not updated", "err", err)
		}
	}
	cancelled := m.retire(ctx, diff.Removed, version)
	m.sched.Wake()
	m.repos.refresh() // new channels and targets are served at once
	if m.conf.src.repo != nil {
		if err := m.conf.src.setGood(version); err != nil {
			m.log.Warn("config applied", "err", err)
		}
	}
	took := time.Since(seen)
	st := &m.conf.status
	st.Commit, st.LoadedAt, st.Took, st.Error = version, time.Now(), took.String(), nil
	st.Builders = len(mx.Builders)
	st.Added, st.Removed, st.Changed, st.Cancelled = len(diff.Added), len(diff.Removed), len(diff.Changed), cancelled
	m.log.Info("config applied", "version", version, "builders", len(mx.Builders),
		"added", len(diff.Added), "removed", len(diff.Removed), "changed", len(diff.Changed), "cancelled", cancelled, "took", took)
	if keys := restartOnly(old.Config.Master, cfg.Master); len(keys) > 0 {
		m.log.Warn("config changes that take effect on restart only", "keys", strings.Join(keys, ", "))
	}
	return nil
}

// refuse records why version is not applied and returns that as an error
// wrapping ErrConfigRefused. c.mu is held.
func (m *Master) refuse(version string, err error) error {
	e := &ConfigError{Commit: version, At: time.Now(), Message: m.relative(err.Error())}
	var list builders.Errors
	var one *builders.Error
	switch {
	case errors.As(err, &list) && len(list) > 0:
		one = list[0]
	case errors.As(err, &one):
	}
	if one != nil {
		e.File, e.Line, e.Column = m.relative(one.File), one.Line, one.Column
	}
	m.conf.status.Error = e
	m.log.Error("config refused: the farm keeps running the last good config",
		"version", version, "active", m.conf.status.Commit, "file", e.File, "line", e.Line, "err", e.Message)
	return fmt.Errorf("%w: %s: %w", ErrConfigRefused, version, err)
}

// relative drops the checkout's directory from paths in messages, so they
// name files as the repository does.
func (m *Master) relative(s string) string {
	if dir := m.conf.src.checkout; dir != "" {
		return strings.ReplaceAll(s, dir+"/", "")
	}
	return s
}

// retire cancels the queued requests of removed builders. Running builds
// finish: they were started with a config that had them. Followers leave
// it to the leader, whose reload does the same.
func (m *Master) retire(ctx context.Context, removed []string, version string) int {
	if len(removed) == 0 || !m.node.IsLeader() {
		return 0
	}
	gone := make(map[string]bool, len(removed))
	for _, b := range removed {
		gone[b] = true
	}
	pending, _ := m.node.FSM.Builds(state.Filter{Status: protocol.StatusPending})
	var cmds []state.Command
	now := time.Now()
	for _, b := range pending {
		if gone[b.Builder] {
			reason := fmt.Sprintf("builder %s was removed from the configuration (%s)", b.Builder, shortVersion(version))
			cmds = append(cmds, state.Command{Cancel: &state.CancelCmd{Build: b.ID, Reason: reason, Time: now}})
		}
	}
	if len(cmds) == 0 {
		return 0
	}
	outs, err := m.node.Apply(ctx, cmds...)
	if err != nil {
		m.log.Error("queued requests of removed builders not cancelled", "err", err)
		return 0
	}
	n := 0
	for _, o := range outs {
		if o.Err == nil {
			n++
		}
	}
	return n
}

func shortVersion(v string) string {
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

// ConfigStatus reports the active config, the last refusal and the health
// of the config repository's poller.
func (m *Master) ConfigStatus() ConfigStatus {
	c := m.conf
	c.mu.Lock()
	st := c.status
	c.mu.Unlock()
	if st.Error != nil {
		e := *st.Error
		st.Error = &e
	}
	if p := m.intake.configPoller; p != nil {
		for _, ps := range p.Status() {
			st.Fetch = &FetchStatus{LastPoll: ps.LastPoll, NextPoll: ps.NextPoll, Failures: ps.Failures, LastError: m.relative(ps.LastError)}
		}
	}
	return st
}

// watchConfig keeps the config current until ctx ends: it polls the config
// repository, or looks at a local config's files every ConfigWatch. It runs
// on every master, leader or not, since each holds its own matrix.
func (m *Master) watchConfig(ctx context.Context) {
	if p := m.intake.configPoller; p != nil {
		if err := p.Run(ctx); err != nil {
			m.log.Error("config poller", "err", err)
		}
		return
	}
	t := time.NewTicker(durationOr(m.o.ConfigWatch, DefaultConfigWatch))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		m.conf.mu.Lock()
		moved := m.conf.src.stamp() != m.conf.stamp
		m.conf.mu.Unlock()
		if !moved {
			continue
		}
		if err := m.reloadLocal(ctx); err != nil && !errors.Is(err, ErrConfigRefused) {
			m.log.Warn("config reload", "err", err)
		}
	}
}

// configChange is the sink of the config repository's poller and of
// webhooks for it: it fetches and applies the branch head. A refused config
// is not an error here, so that neither retries it: the next commit will
// be looked at.
func (m *Master) configChange(ctx context.Context, c hooks.Change) error {
	src := m.conf.src
	if src.repo == nil {
		m.log.Info("push to the config repository ignored: this master reads a local config", "revision", c.Revision)
		return nil
	}
	if c.Branch != src.git.Branch {
		return nil
	}
	err := m.reloadGit(ctx)
	if errors.Is(err, ErrConfigRefused) {
		return nil
	}
	return err
}
