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
	"log/slog"
	"sync/atomic"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kiln-build/kiln/builders"
	"github.com/kiln-build/kiln/master/api"
	"github.com/kiln-build/kiln/master/intake"
	"github.com/kiln-build/kiln/master/poller"
	"github.com/kiln-build/kiln/master/publish"
	"github.com/kiln-build/kiln/master/sched"
	"github.com/kiln-build/kiln/master/state"
	"github.com/kiln-build/kiln/master/web"
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
	Logger       *slog.Logger
}

// View serves the API's backend; Pages serves the status pages.
type View struct {
	o        Options
	layout   atomic.Pointer[gridLayout]
	finished finishedBuilds
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

// Pages is the read model and the actions of the status pages. The API's
// builder list reads the same grid layout, so the page and the API cannot
// disagree on what a builder shows.
type Pages struct{ v *View }

// Pages returns the status pages' source and actions.
func (v *View) Pages() *Pages { return &Pages{v: v} }

var (
	_ web.Source  = (*Pages)(nil)
	_ web.Actions = (*Pages)(nil)
)

// notFound makes a state lookup failure one the pages answer with 404.
func notFound(err error) error {
	if errors.Is(err, state.ErrNotFound) {
		return fmt.Errorf("%w: %w", web.ErrNotFound, err)
	}
	return err
}

// actionError maps the master's refusals onto the pages' 404 and 400.
func actionError(err error) error {
	switch {
	case errors.Is(err, api.ErrUnknownComponent), errors.Is(err, api.ErrNotFound):
		return fmt.Errorf("%w: %w", web.ErrNotFound, err)
	case errors.Is(err, api.ErrInvalid), errors.Is(err, api.ErrConflict):
		return fmt.Errorf("%w: %w", web.ErrInvalid, err)
	}
	return err
}
