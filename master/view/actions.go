package view

import (
	"context"
	"fmt"
	"time"

	"github.com/kiln-build/kiln/master/api"
	"github.com/kiln-build/kiln/master/state"
	"github.com/kiln-build/kiln/master/web"
)

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

func (s *Pages) Force(ctx context.Context, user, component, target, rev string) (web.Forced, error) {
	res, err := s.v.Force(api.WithUser(ctx, user), api.ForceRequest{Component: component, Target: target, Rev: rev})
	if err != nil {
		return web.Forced{}, actionError(err)
	}
	return web.Forced{Change: res.Change, Builds: res.Builds}, nil
}

func (s *Pages) Rebuild(ctx context.Context, user string, id int64) (int64, error) {
	res, err := s.v.Rebuild(api.WithUser(ctx, user), id)
	if err != nil {
		return 0, actionError(err)
	}
	if len(res.Builds) == 0 {
		return 0, fmt.Errorf("rebuild of build %d created no build: %w", id, web.ErrInvalid)
	}
	return res.Builds[0], nil
}

func (s *Pages) Cancel(ctx context.Context, user string, id int64) error {
	s.v.o.Logger.Info("cancel requested", "build", id, "user", user)
	return actionError(s.v.Cancel(api.WithUser(ctx, user), id))
}
