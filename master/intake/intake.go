// Package intake turns changes into builds: it owns the webhook handler
// (/hooks/), the pollers of the components' repositories and of the config
// repository, and forced and repeated builds. Each change becomes one raft
// entry holding the change and its buildset; duplicates (a replayed
// delivery, a webhook and a poll racing) are refused there.
package intake

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"sync/atomic"
	"time"

	"github.com/kiln-build/kiln/builders"
	"github.com/kiln-build/kiln/master/confsrc"
	"github.com/kiln-build/kiln/master/hooks"
	"github.com/kiln-build/kiln/master/poller"
	"github.com/kiln-build/kiln/master/state"
)

// Options are what an Intake works with.
type Options struct {
	Node   *state.Node
	Matrix func() *builders.Matrix
	// Wake tells the scheduler that requests were queued.
	Wake func()
	// ConfigRepo is the config repository when the config comes from git,
	// and ConfigChange applies a push to it (its poller's and webhooks'
	// sink).
	ConfigRepo   builders.ConfigSource
	ConfigChange func(context.Context, hooks.Change) error
	// ConfigPath resolves the starting config's relative secret paths.
	ConfigPath string
	Logger     *slog.Logger
}

// Intake receives changes: webhooks, pollers, forces and rebuilds.
type Intake struct {
	o       Options
	log     *slog.Logger
	handler atomic.Pointer[hooks.Handler]
	poller  *poller.Poller
	// configPoller watches the config repository; nil for a local config.
	configPoller *poller.Poller

	// hookCfg is the handler's config, to rebuild the handler only when the
	// secrets change: a new handler forgets the deliveries it saw, which the
	// replicated state still refuses as duplicates.
	hookCfg hooks.Config
}

// Plan is what a config means for change intake, computed (secrets read)
// before the config is swapped in, so a missing secret refuses it.
type Plan struct {
	hooks      hooks.Config
	components []hooks.Component
	repos      []poller.Repo
}

// Plan reads the webhook secrets and groups the components' pollers.
// configPath resolves relative secret paths.
func (in *Intake) Plan(cfg *builders.Config, configPath string) (*Plan, error) {
	p := &Plan{hooks: hooks.Config{MaxBody: int64(cfg.Master.Hooks.MaxBody)}}
	for _, hp := range cfg.Master.Hooks.Providers() {
		pc := hooks.ProviderConfig{AllowUnsigned: hp.AllowUnsigned}
		if hp.Secret != "" {
			secret, err := confsrc.ReadSecret(hp.Secret, configPath)
			if err != nil {
				return nil, confsrc.Positioned(cfg, "master.hooks."+hp.Name+".secret", fmt.Sprintf("%s webhook secret: %v", hp.Name, err))
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
	if src := in.o.ConfigRepo; src.Git != "" {
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

// New makes the webhook handler and the pollers for the config the master
// starts with.
func New(o Options) (*Intake, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	in := &Intake{o: o, log: o.Logger.With("component", "hooks")}
	cfg := o.Matrix().Config
	plan, err := in.Plan(cfg, o.ConfigPath)
	if err != nil {
		return nil, fmt.Errorf("load config: %w", err)
	}
	poll := cfg.Master.Poll
	in.poller, err = poller.New(poller.Options{
		Sink: in.Submit, Interval: poll.Interval.D(), Jitter: poll.Jitter(), MaxBackoff: poll.MaxBackoff.D(),
		EmitOnFirstSight: poll.EmitOnFirstSight, Seed: in.seed, Logger: o.Logger.With("component", "poller"),
	})
	if err != nil {
		return nil, err
	}
	if src := o.ConfigRepo; src.Git != "" {
		// The config repository's first poll reports its head, so a commit
		// pushed while the master was down is applied at once.
		in.configPoller, err = poller.New(poller.Options{
			Sink: o.ConfigChange, Interval: src.Poll.D(), Jitter: poll.Jitter(), MaxBackoff: poll.MaxBackoff.D(),
			EmitOnFirstSight: true, Logger: o.Logger.With("component", "config-poller"),
		})
		if err != nil {
			return nil, err
		}
		comp := hooks.Component{Name: hooks.ConfigComponent, Repo: src.Git, Branches: []string{src.Branch}}
		if err := in.configPoller.Update([]poller.Repo{{URL: src.Git, Components: []hooks.Component{comp}}}); err != nil {
			return nil, fmt.Errorf("config repository: %w", err)
		}
	}
	if err := in.Apply(plan); err != nil {
		return nil, err
	}
	return in, nil
}

// ServeHTTP serves /hooks/ with the handler of the current config.
func (in *Intake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	in.handler.Load().ServeHTTP(w, r)
}

// Apply makes the webhook routes and the polled repositories match plan.
// Plan ruled out what makes them fail, so an error here is a bug.
func (in *Intake) Apply(p *Plan) error {
	if h := in.handler.Load(); h != nil && reflect.DeepEqual(in.hookCfg, p.hooks) {
		if err := h.SetComponents(p.components); err != nil {
			return fmt.Errorf("update webhook routes: %w", err)
		}
	} else {
		h, err := hooks.New(hooks.Options{Config: p.hooks, Components: p.components, Sink: in.Submit, Notify: in.poller.Notify, Logger: in.log})
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
func (in *Intake) seed(repoURL string) map[string]string {
	key, err := hooks.RepoKey(repoURL)
	if err != nil {
		return nil
	}
	var names []string
	for _, c := range in.o.Matrix().Config.Components {
		if k, err := hooks.RepoKey(c.Git); err == nil && k == key {
			names = append(names, c.Name)
		}
	}
	return in.o.Node.FSM.LastRevisions(names)
}

// RunPollers polls the components' repositories until ctx ends. Only the
// leader runs it: two leaders' pollers would report every push twice.
func (in *Intake) RunPollers(ctx context.Context) {
	if err := in.poller.Run(ctx); err != nil {
		in.log.Error("pollers", "err", err)
	}
}

// RunConfigPoller polls the config repository until ctx ends; every master
// runs it, since each holds its own matrix. It reports false at once for a
// local config.
func (in *Intake) RunConfigPoller(ctx context.Context) bool {
	if in.configPoller == nil {
		return false
	}
	if err := in.configPoller.Run(ctx); err != nil {
		in.log.Error("config poller", "err", err)
	}
	return true
}

// ConfigFetch is the config repository poller's state; false for a local
// config.
func (in *Intake) ConfigFetch() (poller.Status, bool) {
	if in.configPoller == nil {
		return poller.Status{}, false
	}
	for _, ps := range in.configPoller.Status() {
		return ps, true
	}
	return poller.Status{}, false
}

// Pollers reports the repositories' pollers (nothing while not leading,
// since they do not run) and the config repository's.
func (in *Intake) Pollers() []poller.Status {
	out := in.poller.Status()
	if p := in.configPoller; p != nil {
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
