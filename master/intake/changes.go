package intake

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kiln-build/kiln/builders"
	"github.com/kiln-build/kiln/master/hooks"
	"github.com/kiln-build/kiln/master/state"
)

// Errors callers branch on: the API answers 404 and 400 with them.
var (
	ErrUnknownComponent = errors.New("unknown component")
	ErrInvalid          = errors.New("invalid request")
)

// Force records a change of a component (or of one builder, with
// COMPONENT@TARGET or target) and its buildset, for user.
func (in *Intake) Force(ctx context.Context, user, component, target, rev string) (state.Outcome, error) {
	comp := component
	if c, t, ok := strings.Cut(comp, "@"); ok {
		if target != "" && target != t {
			return state.Outcome{}, fmt.Errorf("force: target given twice (%q and %q): %w", t, target, ErrInvalid)
		}
		comp, target = c, t
	}
	if comp == "" {
		return state.Outcome{}, fmt.Errorf("force: no component named: %w", ErrInvalid)
	}
	mx := in.o.Matrix()
	if _, ok := mx.Component(comp); !ok {
		return state.Outcome{}, fmt.Errorf("force %s: %w %q", comp, ErrUnknownComponent, comp)
	}
	var list []*builders.Builder
	for _, b := range mx.Rebuilds(comp) {
		if target == "" || b.Target.String() == target {
			list = append(list, b)
		}
	}
	if target != "" {
		if _, ok := mx.Builder(builders.BuilderName(comp, parseTarget(target))); !ok {
			return state.Outcome{}, fmt.Errorf("force %s@%s: component %s is not built for target %q: %w", comp, target, comp, target, ErrUnknownComponent)
		}
	}
	reason := "forced"
	if target != "" {
		reason = "forced for " + target
	}
	return in.create(ctx, user, comp, target, rev, reason, list)
}

// Rebuild requests the builder of an earlier build again, at the same
// revision, for user.
func (in *Intake) Rebuild(ctx context.Context, user string, id int64) (state.Outcome, error) {
	b, err := in.o.Node.FSM.Build(id)
	if err != nil {
		return state.Outcome{}, err
	}
	bl, ok := in.o.Matrix().Builder(b.Builder)
	if !ok {
		return state.Outcome{}, fmt.Errorf("rebuild %d: builder %s is no longer configured: %w", id, b.Builder, ErrUnknownComponent)
	}
	return in.create(ctx, user, b.Component, b.Target, b.Revision, fmt.Sprintf("rebuild of build %d", id), []*builders.Builder{bl})
}

// Submit records a change seen by a webhook or a poller: it fits
// hooks.Options.Sink and poller.Options.Sink. An error (not the leader, raft
// trouble) tells the sender to offer the change again.
func (in *Intake) Submit(ctx context.Context, c hooks.Change) error {
	if c.Component == hooks.ConfigComponent {
		return in.o.ConfigChange(ctx, c)
	}
	mx := in.o.Matrix()
	if _, ok := mx.Component(c.Component); !ok {
		return fmt.Errorf("change of %s: %w %q", c.Component, ErrUnknownComponent, c.Component)
	}
	reason := c.Source.Kind
	if c.Source.Provider != "" {
		reason += " from " + c.Source.Provider
	}
	if c.Source.User != "" {
		reason += " by " + c.Source.User
	}
	if ref := c.Branch + c.Tag; ref != "" {
		reason += " on " + ref
	}
	ref, src := changeSource(c)
	cmd := &state.ForceCmd{Component: c.Component, Revision: c.Revision, Ref: ref, Source: src, Reason: reason, Time: time.Now()}
	_, err := in.record(ctx, cmd, mx.Rebuilds(c.Component))
	return err
}

func parseTarget(s string) builders.Target {
	p := strings.SplitN(s, "/", 3)
	for len(p) < 3 {
		p = append(p, "")
	}
	return builders.Target{Distro: p[0], Version: p[1], Arch: p[2]}
}

func newBuild(b *builders.Builder) state.NewBuild {
	nb := state.NewBuild{Builder: b.Name, Target: b.Target.String(), Deps: b.Deps, Tags: b.Tags, Priority: b.Priority, Collapse: b.Collapse}
	if b.Component != nil {
		nb.Component = b.Component.Name
	}
	return nb
}

func (in *Intake) create(ctx context.Context, user, comp, target, rev, reason string, list []*builders.Builder) (state.Outcome, error) {
	cmd := &state.ForceCmd{Component: comp, Target: target, Revision: rev, Reason: reason, Time: time.Now(),
		Source: &state.Source{Kind: state.KindForce, User: user}}
	return in.record(ctx, cmd, list)
}

// record logs a change and its buildset of list's builders. A change the
// state already holds (a replayed delivery, a webhook and a poll racing)
// creates nothing and is not an error: the outcome names the first one.
func (in *Intake) record(ctx context.Context, cmd *state.ForceCmd, list []*builders.Builder) (state.Outcome, error) {
	comp := cmd.Component
	for _, b := range list {
		cmd.Builds = append(cmd.Builds, newBuild(b))
	}
	out, err := in.o.Node.Apply1(ctx, state.Command{Force: cmd})
	if err != nil {
		return state.Outcome{}, fmt.Errorf("record change of %s: %w", comp, err)
	}
	if out.Duplicate {
		in.log.Info("duplicate change not recorded", "component", comp, "ref", cmd.Ref, "revision", cmd.Revision, "source", cmd.Source.Kind, "same_as", out.Change)
		out.Builds = nil
		return out, nil
	}
	in.o.Wake()
	in.log.Info("change recorded", "component", comp, "change", out.Change, "builds", len(out.Builds))
	return out, nil
}
