// Package view is what users see of the farm and the actions they take, as
// the REST API (api.Backend) and the status pages (web.Source, web.Actions)
// need them. It reads the raft state, the scheduler's observations and the
// log and artifact store, and converts the raft records into the API's and
// the pages' own types — in this package only, so that a change to a raft
// record never reaches the JSON users script against by accident.
package view

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kiln-build/kiln/builders"
	"github.com/kiln-build/kiln/master/api"
	"github.com/kiln-build/kiln/master/intake"
	"github.com/kiln-build/kiln/master/poller"
	"github.com/kiln-build/kiln/master/publish"
	"github.com/kiln-build/kiln/master/sched"
	"github.com/kiln-build/kiln/master/state"
	"github.com/kiln-build/kiln/protocol"
)

// Scheduler is what the views ask the scheduler.
type Scheduler interface {
	Workers() []sched.WorkerStatus
	Explain(id int64) (*sched.Explanation, error)
	Wake()
}

// Intake takes forced and repeated builds and reports its pollers.
type Intake interface {
	Force(ctx context.Context, user, component, target, rev string) (state.Outcome, error)
	Rebuild(ctx context.Context, user string, id int64) (state.Outcome, error)
	Pollers() []poller.Status
}

// Options are what a View reads and acts through.
type Options struct {
	Node      *state.Node
	Matrix    func() *builders.Matrix
	Scheduler Scheduler
	Intake    Intake
	Publisher *publish.Publisher
	// Cancel tells a worker to stop a build it runs.
	Cancel func(worker, build, reason string)
	// ConfigStatus is the running config and the last refusal.
	ConfigStatus func() api.ConfigStatus
	JetStream    jetstream.JetStream
	Objects      jetstream.ObjectStore
	Logger       interface {
		Info(string, ...any)
		Warn(string, ...any)
	}
}

// View serves the API's backend; Pages serves the status pages.
type View struct {
	o      Options
	layout atomic.Pointer[gridLayout]
}

var _ api.Backend = (*View)(nil)

// New returns a View.
func New(o Options) *View { return &View{o: o} }

// apiError maps the master's sentinel errors onto the API's, keeping the
// message: the one place where a package's refusal becomes a status code.
func apiError(err error) error {
	var kind error
	switch {
	case err == nil:
		return nil
	case errors.Is(err, state.ErrNotFound):
		kind = api.ErrNotFound
	case errors.Is(err, intake.ErrUnknownComponent):
		kind = api.ErrUnknownComponent
	case errors.Is(err, intake.ErrInvalid):
		kind = api.ErrInvalid
	case errors.Is(err, state.ErrFinished):
		kind = api.ErrConflict
	case errors.Is(err, state.ErrNotLeader), errors.Is(err, sched.ErrNotLeading), errors.Is(err, publish.ErrNoRepos):
		kind = api.ErrUnavailable
	default:
		return err
	}
	return fmt.Errorf("%w: %w", kind, err)
}

// Force records a change of a component, or of one builder with
// COMPONENT@TARGET or Target, and its buildset.
func (v *View) Force(ctx context.Context, r api.ForceRequest) (*api.ForceResult, error) {
	out, err := v.o.Intake.Force(ctx, api.User(ctx), r.Component, r.Target, r.Rev)
	if err != nil {
		return nil, apiError(err)
	}
	return forceResult(out), nil
}

// Rebuild requests the builder of an earlier build again, at the same
// revision.
func (v *View) Rebuild(ctx context.Context, id int64) (*api.ForceResult, error) {
	out, err := v.o.Intake.Rebuild(ctx, api.User(ctx), id)
	if err != nil {
		return nil, apiError(err)
	}
	return forceResult(out), nil
}

func forceResult(o state.Outcome) *api.ForceResult {
	return &api.ForceResult{Change: o.Change, Buildset: o.Buildset, Builds: o.Builds}
}

// Cancel ends a pending or running build; a running one's worker is told.
func (v *View) Cancel(ctx context.Context, id int64) error {
	out, err := v.o.Node.Apply1(ctx, state.Command{Cancel: &state.CancelCmd{Build: id, Reason: "cancelled by request", Time: time.Now()}})
	if err != nil {
		return apiError(fmt.Errorf("cancel build %d: %w", id, err))
	}
	if out.Worker != "" {
		v.o.Cancel(out.Worker, state.FormatID(id), "cancelled by request")
	}
	v.o.Scheduler.Wake()
	return nil
}

func (v *View) Builds(f api.BuildFilter) ([]*api.Build, int) {
	list, total := v.o.Node.FSM.Builds(state.Filter{Component: f.Component, Target: f.Target, Status: f.Status, Worker: f.Worker,
		Buildset: f.Buildset, Limit: f.Limit, Offset: f.Offset})
	out := make([]*api.Build, len(list))
	for i, b := range list {
		out[i] = apiBuild(b)
	}
	return out, total
}

func (v *View) Build(id int64) (*api.Build, error) {
	b, err := v.o.Node.FSM.Build(id)
	if err != nil {
		return nil, apiError(err)
	}
	return apiBuild(b), nil
}

func (v *View) Change(id int64) (*api.Change, error) {
	c, err := v.o.Node.FSM.Change(id)
	if err != nil {
		return nil, apiError(err)
	}
	return apiChange(c), nil
}

func (v *View) Changes(f api.ChangeFilter) ([]*api.Change, int) {
	list, total := v.o.Node.FSM.Changes(f.Component, f.Offset, f.Limit)
	out := make([]*api.Change, len(list))
	for i, c := range list {
		out[i] = apiChange(c)
	}
	return out, total
}

func (v *View) Workers() []api.Worker {
	ws := v.o.Scheduler.Workers()
	out := make([]api.Worker, len(ws))
	for i, w := range ws {
		out[i] = apiWorker(w)
	}
	return out
}

func (v *View) Explain(id int64) (*api.Explanation, error) {
	e, err := v.o.Scheduler.Explain(id)
	if err != nil {
		return nil, apiError(err)
	}
	x := api.Explanation(*e)
	return &x, nil
}

func (v *View) ConfigStatus() api.ConfigStatus { return v.o.ConfigStatus() }

// Pollers reports the repositories' pollers (nothing while not leading,
// since they do not run) and the config repository's.
func (v *View) Pollers() []api.Poller {
	ps := v.o.Intake.Pollers()
	out := make([]api.Poller, len(ps))
	for i, p := range ps {
		out[i] = apiPoller(p)
	}
	return out
}

// Log reads a build's chunks from the log stream. Every attempt's lines are
// kept; the subject wildcard spans the workers that ran it.
func (v *View) Log(ctx context.Context, id int64, follow bool, fn func(protocol.LogChunk) error) error {
	subject := "kiln.log.*." + state.FormatID(id)
	stream, err := v.o.JetStream.Stream(ctx, protocol.LogStream)
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
			ended = v.ended(id)
			continue
		}
		var c protocol.LogChunk
		if err := protocol.Decode(msg.Data(), &c); err != nil {
			v.o.Logger.Warn("skipped malformed log chunk", "build", id, "subject", msg.Subject(), "err", err)
			continue
		}
		if err := fn(c); err != nil {
			return err
		}
		if meta, err := msg.Metadata(); err == nil && meta.NumPending == 0 && (!follow || v.ended(id)) {
			return nil
		}
	}
}

func (v *View) ended(id int64) bool {
	b, err := v.o.Node.FSM.Build(id)
	return err != nil || state.Terminal(b.Status)
}

// Artifact opens one of a build's artifacts from the object store.
func (v *View) Artifact(ctx context.Context, id int64, name string) (io.ReadCloser, api.Artifact, error) {
	b, err := v.o.Node.FSM.Build(id)
	if err != nil {
		return nil, api.Artifact{}, apiError(err)
	}
	i := slices.IndexFunc(b.Artifacts, func(a protocol.Artifact) bool { return a.Name == name })
	if i < 0 {
		return nil, api.Artifact{}, fmt.Errorf("build %d has no artifact %q: %w", id, name, api.ErrNotFound)
	}
	a := api.Artifact(b.Artifacts[i])
	obj, err := v.o.Objects.Get(ctx, a.SHA256)
	if err != nil {
		return nil, a, fmt.Errorf("open artifact %s of build %d: %w", name, id, err)
	}
	return obj, a, nil
}
