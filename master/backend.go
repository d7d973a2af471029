package master

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kiln-build/kiln/builders"
	"github.com/kiln-build/kiln/master/api"
	"github.com/kiln-build/kiln/master/hooks"
	"github.com/kiln-build/kiln/master/sched"
	"github.com/kiln-build/kiln/master/state"
	"github.com/kiln-build/kiln/protocol"
)

var _ api.Backend = (*Master)(nil)

// Force records a change of a component (or of one builder, with
// COMPONENT@TARGET or Target) and its buildset.
func (m *Master) Force(ctx context.Context, r api.ForceRequest) (*api.ForceResult, error) {
	comp, target := r.Component, r.Target
	if c, t, ok := strings.Cut(comp, "@"); ok {
		if target != "" && target != t {
			return nil, fmt.Errorf("force: target given twice (%q and %q): %w", t, target, api.ErrInvalid)
		}
		comp, target = c, t
	}
	if comp == "" {
		return nil, fmt.Errorf("force: no component named: %w", api.ErrInvalid)
	}
	mx := m.matrix.Load()
	if _, ok := mx.Component(comp); !ok {
		return nil, fmt.Errorf("force %s: %w %q", comp, api.ErrUnknownComponent, comp)
	}
	var list []*builders.Builder
	for _, b := range mx.Rebuilds(comp) {
		if target == "" || b.Target.String() == target {
			list = append(list, b)
		}
	}
	if target != "" {
		if _, ok := mx.Builder(builders.BuilderName(comp, parseTarget(target))); !ok {
			return nil, fmt.Errorf("force %s@%s: component %s is not built for target %q: %w", comp, target, comp, target, api.ErrUnknownComponent)
		}
	}
	reason := "forced"
	if target != "" {
		reason = "forced for " + target
	}
	return m.create(ctx, comp, target, r.Rev, reason, list)
}

// SubmitChange records a change seen by a webhook or a poller: it fits
// hooks.Options.Sink and poller.Options.Sink. An error (not the leader, raft
// trouble) tells the sender to offer the change again.
func (m *Master) SubmitChange(ctx context.Context, c hooks.Change) error {
	if c.Component == hooks.ConfigComponent {
		return m.configChange(ctx, c)
	}
	mx := m.matrix.Load()
	if _, ok := mx.Component(c.Component); !ok {
		return fmt.Errorf("change of %s: %w %q", c.Component, api.ErrUnknownComponent, c.Component)
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
	_, err := m.record(ctx, cmd, mx.Rebuilds(c.Component))
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

func (m *Master) create(ctx context.Context, comp, target, rev, reason string, list []*builders.Builder) (*api.ForceResult, error) {
	// The user is set for an authenticated API or web action.
	cmd := &state.ForceCmd{Component: comp, Target: target, Revision: rev, Reason: reason, Time: time.Now(),
		Source: &state.Source{Kind: state.KindForce, User: api.User(ctx)}}
	return m.record(ctx, cmd, list)
}

// record logs a change and its buildset of list's builders. A change the
// state already holds (a replayed delivery, a webhook and a poll racing)
// creates nothing and is not an error: the result names the first one.
func (m *Master) record(ctx context.Context, cmd *state.ForceCmd, list []*builders.Builder) (*api.ForceResult, error) {
	comp := cmd.Component
	for _, b := range list {
		cmd.Builds = append(cmd.Builds, newBuild(b))
	}
	out, err := m.node.Apply1(ctx, state.Command{Force: cmd})
	if err != nil {
		return nil, fmt.Errorf("record change of %s: %w", comp, err)
	}
	if out.Duplicate {
		m.log.Info("duplicate change not recorded", "component", comp, "ref", cmd.Ref, "revision", cmd.Revision, "source", cmd.Source.Kind, "same_as", out.Change)
		return &api.ForceResult{Change: out.Change, Buildset: out.Buildset}, nil
	}
	m.sched.Wake()
	m.log.Info("change recorded", "component", comp, "change", out.Change, "builds", len(out.Builds))
	return &api.ForceResult{Change: out.Change, Buildset: out.Buildset, Builds: out.Builds}, nil
}

// Rebuild requests the builder of an earlier build again, at the same revision.
func (m *Master) Rebuild(ctx context.Context, id int64) (*api.ForceResult, error) {
	b, err := m.node.FSM.Build(id)
	if err != nil {
		return nil, err
	}
	bl, ok := m.matrix.Load().Builder(b.Builder)
	if !ok {
		return nil, fmt.Errorf("rebuild %d: builder %s is no longer configured: %w", id, b.Builder, api.ErrUnknownComponent)
	}
	return m.create(ctx, b.Component, b.Target, b.Revision, fmt.Sprintf("rebuild of build %d", id), []*builders.Builder{bl})
}

// Cancel ends a pending or running build; a running one's worker is told.
func (m *Master) Cancel(ctx context.Context, id int64) error {
	out, err := m.node.Apply1(ctx, state.Command{Cancel: &state.CancelCmd{Build: id, Reason: "cancelled by request", Time: time.Now()}})
	if err != nil {
		return fmt.Errorf("cancel build %d: %w", id, err)
	}
	if out.Worker != "" {
		m.sendCancel(out.Worker, state.FormatID(id), "cancelled by request")
	}
	m.sched.Wake()
	return nil
}

func (m *Master) Builds(f state.Filter) ([]*state.Build, int)  { return m.node.FSM.Builds(f) }
func (m *Master) Build(id int64) (*state.Build, error)         { return m.node.FSM.Build(id) }
func (m *Master) Change(id int64) (*state.Change, error)       { return m.node.FSM.Change(id) }
func (m *Master) Workers() []sched.WorkerStatus                { return m.sched.Workers() }
func (m *Master) Explain(id int64) (*sched.Explanation, error) { return m.sched.Explain(id) }

// Log reads a build's chunks from the log stream. Every attempt's lines are
// kept; the subject wildcard spans the workers that ran it.
func (m *Master) Log(ctx context.Context, id int64, follow bool, fn func(protocol.LogChunk) error) error {
	subject := "kiln.log.*." + state.FormatID(id)
	stream, err := m.js.Stream(ctx, protocol.LogStream)
	if err != nil {
		return fmt.Errorf("open log stream: %w", err)
	}
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		return fmt.Errorf("inspect log stream: %w", err)
	}
	if len(info.State.Subjects) == 0 && !follow {
		return nil
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	if err != nil {
		return fmt.Errorf("read log of build %d: %w", id, err)
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("read log of build %d: %w", id, err)
	}
	defer it.Stop()
	ended := false
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		msg, err := it.Next(jetstream.NextMaxWait(500 * time.Millisecond))
		if err != nil {
			if !errors.Is(err, nats.ErrTimeout) {
				return fmt.Errorf("read log of build %d: %w", id, err)
			}
			// Nothing more right now: done unless following a live build.
			// A build that ended before this wait began has its last lines
			// in the stream already, so one more quiet wait closes it.
			if !follow || ended {
				return nil
			}
			ended = m.ended(id)
			continue
		}
		var c protocol.LogChunk
		if err := protocol.Decode(msg.Data(), &c); err != nil {
			m.log.Warn("skipped malformed log chunk", "build", id, "subject", msg.Subject(), "err", err)
			continue
		}
		if err := fn(c); err != nil {
			return err
		}
		if meta, err := msg.Metadata(); err == nil && meta.NumPending == 0 && (!follow || m.ended(id)) {
			return nil
		}
	}
}

func (m *Master) ended(id int64) bool {
	b, err := m.node.FSM.Build(id)
	return err != nil || state.Terminal(b.Status)
}

// Artifact opens one of a build's artifacts from the object store.
func (m *Master) Artifact(ctx context.Context, id int64, name string) (io.ReadCloser, protocol.Artifact, error) {
	b, err := m.node.FSM.Build(id)
	if err != nil {
		return nil, protocol.Artifact{}, err
	}
	i := slices.IndexFunc(b.Artifacts, func(a protocol.Artifact) bool { return a.Name == name })
	if i < 0 {
		return nil, protocol.Artifact{}, fmt.Errorf("build %d has no artifact %q: %w", id, name, state.ErrNotFound)
	}
	a := b.Artifacts[i]
	obj, err := m.objects.Get(ctx, a.SHA256)
	if err != nil {
		return nil, a, fmt.Errorf("open artifact %s of build %d: %w", name, id, err)
	}
	return obj, a, nil
}
