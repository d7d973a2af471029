package master

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kiln-build/kiln/builders"
	"github.com/kiln-build/kiln/master/hooks"
	"github.com/kiln-build/kiln/master/natsd"
	"github.com/kiln-build/kiln/master/poller"
	"github.com/kiln-build/kiln/master/state"
	"github.com/kiln-build/kiln/protocol"
)

// intake wires change intake into the master: the webhook handler at
// /hooks/, the pollers of the components' repositories (run while this
// master leads) and the poller of the config repository (run always).
type intake struct {
	handler atomic.Pointer[hooks.Handler]
	poller  *poller.Poller
	// configPoller watches the config repository; nil for a local config.
	configPoller *poller.Poller

	// hookCfg is the handler's config, to rebuild the handler only when the
	// secrets change: a new handler forgets the deliveries it saw, which the
	// replicated state still refuses as duplicates.
	hookCfg hooks.Config
	sink    func(context.Context, hooks.Change) error
	notify  func(repoURL, ref, revision string)
	log     *slog.Logger
}

// intakePlan is what a config means for change intake, computed (secrets
// read) before the config is swapped in, so a missing secret refuses it.
type intakePlan struct {
	hooks      hooks.Config
	components []hooks.Component
	repos      []poller.Repo
}

// planIntake reads the webhook secrets and groups the components' pollers.
// configPath resolves relative secret paths.
func (m *Master) planIntake(cfg *builders.Config, configPath string) (*intakePlan, error) {
	p := &intakePlan{hooks: hooks.Config{MaxBody: int64(cfg.Master.Hooks.MaxBody)}}
	for _, hp := range cfg.Master.Hooks.Providers() {
		pc := hooks.ProviderConfig{AllowUnsigned: hp.AllowUnsigned}
		if hp.Secret != "" {
			secret, err := ReadSecret(hp.Secret, configPath)
			if err != nil {
				return nil, positioned(cfg, "master.hooks."+hp.Name+".secret", fmt.Sprintf("%s webhook secret: %v", hp.Name, err))
			}
			pc.Secret = secret
		}
		switch hp.Name {
		case "github":
			p.hooks.GitHub = pc
		case "gitlab":
			p.hooks.GitLab = pc
		case "gitea":
			p.hooks.Gitea = pc
		case "bitbucket":
			p.hooks.Bitbucket = pc
		case "generic":
			p.hooks.Generic = pc
		}
	}
	var polled []hooks.Component
	interval := map[string]time.Duration{} // component → its own interval
	for _, c := range cfg.Components {
		hc := hooks.Component{Name: c.Name, Repo: c.Git, Branches: c.Branches}
		p.components = append(p.components, hc)
		if !cfg.Master.Poll.On() || (c.Poll != nil && c.Poll.Off) {
			continue
		}
		polled = append(polled, hc)
		interval[c.Name] = cfg.Master.Poll.Interval.D()
		if c.Poll != nil && c.Poll.Interval > 0 {
			interval[c.Name] = c.Poll.Interval
		}
	}
	if src := m.conf.src.git; src.Git != "" {
		p.components = append(p.components, hooks.Component{Name: hooks.ConfigComponent, Repo: src.Git, Branches: []string{src.Branch}})
	}
	// Both fail on a git URL that cannot be normalised, which the swap
	// must not discover half-way.
	if _, err := hooks.NewRoutes(p.components); err != nil {
		return nil, fmt.Errorf("%w: webhook routes: %w", builders.ErrInvalid, err)
	}
	repos, err := poller.Group(polled)
	if err != nil {
		return nil, fmt.Errorf("%w: pollers: %w", builders.ErrInvalid, err)
	}
	// A repository shared by components is polled as often as the most
	// eager of them asks.
	for i := range repos {
		for _, c := range repos[i].Components {
			if d := interval[c.Name]; d > 0 && (repos[i].Interval == 0 || d < repos[i].Interval) {
				repos[i].Interval = d
			}
		}
	}
	p.repos = repos
	return p, nil
}

// positioned makes a problem found outside builders point at the key in
// the config like builders' own errors.
func positioned(cfg *builders.Config, path, msg string) error {
	pos, _ := cfg.Position(path)
	return builders.Errors{{File: pos.File, Line: pos.Line, Column: pos.Column, Path: path, Msg: msg}}
}

// natsUsers is the embedded server's user list for cfg's workers.
func (m *Master) natsUsers(cfg *builders.Config, configPath string) ([]natsd.User, error) {
	users := []natsd.User{{Name: MasterUser, Password: m.natsPassword}}
	for i, w := range cfg.Workers {
		token, err := ReadSecret(w.Credentials, configPath)
		if err != nil {
			return nil, positioned(cfg, fmt.Sprintf("workers[%d].credentials", i), fmt.Sprintf("worker %s credentials: %v", w.Name, err))
		}
		pub, sub := protocol.WorkerPermissions(w.Name)
		users = append(users, natsd.User{Name: w.Name, Password: token, Publish: pub, Subscribe: sub})
	}
	return users, nil
}

// setupIntake builds the webhook handler and the pollers for the config the
// master starts with and mounts /hooks/ and the intake API routes.
func (m *Master) setupIntake(cfg *builders.Config, mx *builders.Matrix) error {
	plan, err := m.planIntake(cfg, m.o.ConfigPath)
	if err != nil {
		return fmt.Errorf("load config: %w", err)
	}
	in := &intake{sink: m.SubmitChange, log: m.log.With("component", "hooks")}
	poll := cfg.Master.Poll
	in.poller, err = poller.New(poller.Options{
		Sink: m.SubmitChange, Interval: poll.Interval.D(), Jitter: poll.Jitter(), MaxBackoff: poll.MaxBackoff.D(),
		EmitOnFirstSight: poll.EmitOnFirstSight, Seed: m.seed, Logger: m.log.With("component", "poller"),
	})
	if err != nil {
		return err
	}
	in.notify = in.poller.Notify
	if src := m.conf.src.git; src.Git != "" {
		// The config repository's first poll reports its head, so a commit
		// pushed while the master was down is applied at once.
		in.configPoller, err = poller.New(poller.Options{
			Sink: m.configChange, Interval: src.Poll.D(), Jitter: poll.Jitter(), MaxBackoff: poll.MaxBackoff.D(),
			EmitOnFirstSight: true, Logger: m.log.With("component", "config-poller"),
		})
		if err != nil {
			return err
		}
		comp := hooks.Component{Name: hooks.ConfigComponent, Repo: src.Git, Branches: []string{src.Branch}}
		if err := in.configPoller.Update([]poller.Repo{{URL: src.Git, Components: []hooks.Component{comp}}}); err != nil {
			return fmt.Errorf("config repository: %w", err)
		}
	}
	m.intake = in
	if err := in.apply(plan); err != nil {
		return err
	}
	version, err := m.conf.src.version()
	if err != nil {
		return err
	}
	m.conf.stamp = m.conf.src.stamp()
	m.conf.status = ConfigStatus{
		Source: firstOf(m.conf.src.git.Git, m.conf.src.local), Branch: m.conf.src.git.Branch, Path: m.conf.src.git.Path,
		Commit: version, LoadedAt: time.Now(), Builders: len(mx.Builders),
	}
	if m.conf.src.repo != nil {
		if err := m.conf.src.setGood(version); err != nil {
			return err
		}
	}
	m.mux.Handle("/hooks/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.intake.handler.Load().ServeHTTP(w, r)
	}))
	m.registerIntakeAPI()
	return nil
}

// apply makes the webhook routes and the polled repositories match plan.
// planIntake ruled out what makes them fail, so an error here is a bug.
func (in *intake) apply(p *intakePlan) error {
	if h := in.handler.Load(); h != nil && reflect.DeepEqual(in.hookCfg, p.hooks) {
		if err := h.SetComponents(p.components); err != nil {
			return fmt.Errorf("update webhook routes: %w", err)
		}
	} else {
		h, err := hooks.New(hooks.Options{Config: p.hooks, Components: p.components, Sink: in.sink, Notify: in.notify, Logger: in.log})
		if err != nil {
			return fmt.Errorf("webhook handler: %w", err)
		}
		in.handler.Store(h)
		in.hookCfg = p.hooks
	}
	if err := in.poller.Update(p.repos); err != nil {
		return fmt.Errorf("update pollers: %w", err)
	}
	return nil
}

// seed hands a new leader's poller the revisions the farm recorded for the
// components of repoURL, so a push during a failover is still reported.
func (m *Master) seed(repoURL string) map[string]string {
	key, err := hooks.RepoKey(repoURL)
	if err != nil {
		return nil
	}
	var names []string
	for _, c := range m.matrix.Load().Config.Components {
		if k, err := hooks.RepoKey(c.Git); err == nil && k == key {
			names = append(names, c.Name)
		}
	}
	return m.node.FSM.LastRevisions(names)
}

// runLeader runs what only the leader may: the scheduler and the pollers
// (two leaders' pollers would report every push twice).
func (m *Master) runLeader(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { _ = m.sched.Run(ctx) })
	wg.Go(func() { m.maintainRepos(ctx) })
	wg.Go(func() {
		if err := m.intake.poller.Run(ctx); err != nil {
			m.log.Error("pollers", "err", err)
		}
	})
	wg.Wait()
}

// Pollers reports the repositories' pollers (nothing while not leading,
// since they do not run) and the config repository's.
func (m *Master) Pollers() []poller.Status {
	out := m.intake.poller.Status()
	if p := m.intake.configPoller; p != nil {
		out = append(out, p.Status()...)
	}
	return out
}

// changeSource converts intake's record of origin into the state's.
func changeSource(c hooks.Change) (ref string, src *state.Source) {
	switch {
	case c.Branch != "":
		ref = "refs/heads/" + c.Branch
	case c.Tag != "":
		ref = "refs/tags/" + c.Tag
	}
	s := c.Source
	return ref, &state.Source{Kind: s.Kind, Provider: s.Provider, Delivery: s.Delivery, User: s.User, Poller: s.Poller}
}
