package sched

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/kiln-build/kiln/builders"
	"github.com/kiln-build/kiln/master/state"
	"github.com/kiln-build/kiln/protocol"
)

// send turns an assigned build into a job and delivers it in the
// background, so one slow worker does not hold up the pass. A refusal or
// silence puts the build back in the queue.
func (s *Scheduler) send(ctx context.Context, id int64, worker string, attempt int) {
	b, err := s.o.State.Build(id)
	if err != nil {
		// Builds are never deleted, so this is a bug, not a race; the
		// attempt is left for the worker's next hello or silence to settle.
		s.log.Error("assigned build not readable", "build", id, "err", err)
		return
	}
	job, err := s.jobFor(b, attempt)
	if err != nil {
		// Retrying cannot help until the configuration changes, and the
		// build was asked for under a configuration that had the builder.
		s.log.Error("build cannot be dispatched", "build", id, "err", err)
		now := s.now()
		fin := state.Command{Finish: &state.FinishCmd{Time: now, Result: protocol.Result{
			V: protocol.Version, Worker: worker, Build: job.Build, Attempt: attempt, Status: protocol.StatusException, Summary: err.Error(), Ended: now,
		}}}
		if err := s.apply1(ctx, fin); err != nil {
			s.log.Warn("undispatchable build not ended", "build", id, "err", err)
			return
		}
		// Its dependents can now be skipped.
		s.Wake()
		return
	}
	s.sends.Add(1)
	go func() {
		defer s.sends.Done()
		s.deliver(ctx, job, id, worker, attempt)
	}()
}

// deliver sends one job and waits for the worker's answer.
func (s *Scheduler) deliver(ctx context.Context, job protocol.Job, id int64, worker string, attempt int) {
	ack, err := s.o.Sender.SendJob(withTimeout(ctx, s.o.JobTimeout), worker, job)
	var reason string
	switch {
	case errors.Is(err, ErrNotDelivered):
		reason = err.Error()
		s.live.markGone(worker)
	case err != nil:
		reason = err.Error()
	case !ack.OK:
		reason = "worker refused: " + ack.Error
		s.live.markBusy(worker)
	default:
		return
	}
	s.log.Warn("job returned to queue", "build", id, "worker", worker, "reason", reason)
	// The attempt must go back even when the pass's context ended (this
	// master stopping or losing leadership): otherwise it stays running on
	// a worker that never got it until that worker is declared silent.
	un := state.Command{Unassign: &state.UnassignCmd{Build: id, Attempt: attempt, Reason: reason, Time: s.now()}}
	if _, err := s.o.Applier.Apply(context.WithoutCancel(ctx), un); err != nil {
		s.log.Warn("unassign not applied", "build", id, "err", err)
	}
	s.Wake()
}

// withTimeout bounds a request without leaking the cancel func: the
// deadline's timer is released when it fires or the parent ends.
func withTimeout(ctx context.Context, d time.Duration) context.Context {
	c, cancel := context.WithTimeout(ctx, d)
	context.AfterFunc(c, cancel)
	return c
}

// jobFor resolves a build's builder in the current configuration into a job.
func (s *Scheduler) jobFor(b *state.Build, attempt int) (protocol.Job, error) {
	job := protocol.Job{V: protocol.Version, Build: state.FormatID(b.ID), Attempt: attempt, Builder: b.Builder,
		Component: b.Component, Target: b.Target, Revision: b.Revision}
	bl, ok := s.o.Matrix().Builder(b.Builder)
	if !ok {
		return job, fmt.Errorf("builder %s is no longer in the configuration", b.Builder)
	}
	job.Format = bl.Format
	if s.o.JobRepos != nil {
		r := s.o.JobRepos(b.Builder, b.Target)
		job.RepoURL, job.RepoKey, job.Published = r.URL, r.Key, r.Published
	}
	if bl.Component != nil {
		job.ExactVersions = bl.Component.Versions == builders.VersionsExact
		job.Git = bl.Component.Git
		if len(bl.Component.Branches) > 0 {
			job.Branch = bl.Component.Branches[0]
		}
	}
	// Only configured properties: what an earlier attempt set is its own.
	job.Properties = maps.Clone(bl.Properties)
	for _, st := range bl.Steps {
		job.Steps = append(job.Steps, ProtocolStep(st))
	}
	return job, nil
}

// ProtocolStep converts a configured step into its wire form.
func ProtocolStep(st builders.Step) protocol.Step {
	return protocol.Step{Name: st.Name, Type: st.Type, Command: st.Command, Script: st.Script, Env: st.Env,
		Workdir: st.Workdir, Timeout: st.Timeout.D(), SetProperty: st.SetProperty, AllowFailure: st.AllowFailure,
		With: st.With, Artifacts: st.Artifacts, When: st.When}
}
