package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/kiln-build/kiln/protocol"
	"github.com/kiln-build/kiln/steps"
)

// build is one running attempt.
type build struct {
	job    protocol.Job
	log    *slog.Logger
	cancel context.CancelCauseFunc
}

// lostReportTimeout bounds the last report of a build the worker abandons
// on shutdown: best effort, the master's heartbeat timeout covers the rest.
const lostReportTimeout = 3 * time.Second

// startBuild registers job and runs it in a goroutine Run waits for.
// The caller holds w.mu.
func (w *Worker) startBuild(job protocol.Job, log *slog.Logger) {
	ctx, cancel := buildContext(w.base)
	b := &build{job: job, log: log, cancel: cancel}
	w.builds[job.Build] = b
	w.builders.Go(func() {
		defer b.cancel(nil)
		w.runBuild(ctx, b)
	})
}

// release frees the build's slot once its work is done; its result may
// still be on the way, but the next job need not wait for the master's ack.
func (w *Worker) release(b *build) {
	w.mu.Lock()
	if w.builds[b.job.Build] == b {
		delete(w.builds, b.job.Build)
	}
	w.mu.Unlock()
	select {
	case w.idle <- struct{}{}:
	default:
	}
}

func (w *Worker) runBuild(ctx context.Context, b *build) {
	job := b.job
	res := protocol.Result{
		V: protocol.Version, Worker: w.cfg.Name, Build: job.Build, Attempt: job.Attempt,
		Started: time.Now().UTC(),
	}
	rep := w.newReporter(b, len(job.Steps))
	logs := w.newLogStream(job)
	props := steps.NewProperties(job, w.cfg.Name)

	ws, err := w.workspace(job)
	if err != nil {
		res.Status, res.Summary = protocol.StatusException, err.Error()
	} else {
		env := &steps.Env{Workspace: ws, CacheDir: w.cfg.CacheDir, Job: job, Props: props, SignRPM: w.cfg.SignRPM}
		res.Status, res.Summary, res.Artifacts = w.runSteps(ctx, b, env, rep, logs)
		if !w.cfg.KeepWorkspaces {
			if err := os.RemoveAll(ws); err != nil {
				b.log.Warn("remove workspace", "dir", ws, "err", err)
			}
		}
	}
	res.Properties = props.Snapshot()
	// Whole log and every step event before the result: whoever sees the
	// result can read the complete log.
	logs.Close()
	rep.Close()
	res.Ended = time.Now().UTC()
	w.release(b)

	rctx := w.base
	if errors.Is(context.Cause(ctx), errWorkerStopped) {
		res.Status, res.Summary = protocol.StatusLost, errWorkerStopped.Error()+" mid-build"
		var cancel context.CancelFunc
		rctx, cancel = context.WithTimeout(context.WithoutCancel(w.base), lostReportTimeout)
		defer cancel()
	}
	var ack protocol.Ack
	if err := w.request(rctx, protocol.ResultSubject(w.cfg.Name), res, &ack); err != nil {
		b.log.Warn("result not delivered; the master will see the build lost", "status", res.Status, "err", err)
		return
	}
	if !ack.OK {
		b.log.Warn("master refused the result", "err", ack.Error)
	}
	b.log.Info("build finished", "status", res.Status, "summary", res.Summary, "took", res.Ended.Sub(res.Started).Round(time.Millisecond))
}

// workspace makes the attempt's fresh directory.
func (w *Worker) workspace(job protocol.Job) (string, error) {
	ws := filepath.Join(w.cfg.buildsDir(), fmt.Sprintf("%s-%d", job.Build, job.Attempt))
	if err := os.RemoveAll(ws); err != nil {
		return "", fmt.Errorf("clear workspace: %w", err)
	}
	if err := os.MkdirAll(ws, 0o755); err != nil {
		return "", fmt.Errorf("create workspace: %w", err)
	}
	return ws, nil
}

// runSteps runs the job's steps in order and returns the build's status,
// summary and artifacts.
func (w *Worker) runSteps(ctx context.Context, b *build, env *steps.Env, rep *reporter, logs *logStream) (string, string, []protocol.Artifact) {
	var artifacts []protocol.Artifact
	specs := b.job.Steps
	for i, spec := range specs {
		name := stepName(spec)
		if ctx.Err() != nil {
			rep.skip(i, specs[i:])
			return cancelStatus(ctx), fmt.Sprintf("%s before step %s", context.Cause(ctx), name), artifacts
		}
		env.Log = logs.step(i)
		ev := protocol.StepEvent{
			V: protocol.Version, Worker: w.cfg.Name, Build: b.job.Build, Attempt: b.job.Attempt,
			Step: i, Name: name, Status: protocol.StatusRunning, Started: time.Now().UTC(),
		}
		if run, why, err := stepWhen(b.job, env.Props, spec); !run {
			// One event, no running one: the step never started.
			ev.Ended = ev.Started
			if err != nil {
				// Only a master of another protocol version could send a
				// condition this worker cannot judge; running the step and
				// skipping it are both guesses, so the build fails here.
				ev.Status, ev.Summary = protocol.StatusFailure, "cannot evaluate when: "+err.Error()
				env.Logf("step %s failed: %s", name, ev.Summary)
				rep.send(ev)
				rep.skip(i+1, specs[i+1:])
				return ev.Status, fmt.Sprintf("step %s: %s", name, ev.Summary), artifacts
			}
			// Skipping is neither success nor failure: the build goes on
			// and ends by its other steps.
			ev.Status, ev.Summary = protocol.StatusSkipped, "skipped: when "+why
			env.Logf("step %s %s", name, ev.Summary)
			rep.send(ev)
			b.log.Debug("step skipped", "step", i, "name", name, "summary", ev.Summary)
			continue
		}
		rep.send(ev)

		summary, stored, err := w.runStep(ctx, env, spec)
		artifacts = append(artifacts, stored...)
		ev.Status, ev.Summary, ev.Ended = protocol.StatusSuccess, summary, time.Now().UTC()
		fatal := false
		if err != nil {
			ev.Status = protocol.StatusFailure
			if ctx.Err() != nil {
				ev.Status = cancelStatus(ctx)
			}
			env.Logf("step %s failed: %v", name, err)
			fatal = ctx.Err() != nil || !spec.AllowFailure || errors.Is(err, steps.ErrUnknownStep)
		}
		ev.Properties = env.Props.Snapshot()
		rep.send(ev)
		b.log.Debug("step done", "step", i, "name", name, "status", ev.Status, "summary", summary)
		if fatal {
			rep.skip(i+1, specs[i+1:])
			return ev.Status, fmt.Sprintf("step %s: %s", name, summary), artifacts
		}
	}
	return protocol.StatusSuccess, "", artifacts
}

// stepWhen decides whether a step runs: its conditions are evaluated against
// the job's target and the build's properties as they are now, after every
// earlier step. A property never set fails the test naming it (see
// protocol.Condition). why is the first condition that does not hold.
func stepWhen(job protocol.Job, props *steps.Properties, spec protocol.Step) (run bool, why string, err error) {
	if len(spec.When) == 0 {
		return true, "", nil
	}
	return protocol.Eval(spec.When, protocol.Facts{Target: job.Target, Format: job.Format, Property: props.Get})
}

// runStep runs one step and stores the artifacts it collected.
func (w *Worker) runStep(ctx context.Context, env *steps.Env, spec protocol.Step) (string, []protocol.Artifact, error) {
	out, err := steps.Run(ctx, env, spec)
	if err != nil || len(out.Artifacts) == 0 {
		return out.Summary, nil, err
	}
	stored, err := w.storeArtifacts(ctx, env, out.Artifacts)
	if err != nil {
		return "storing artifacts failed: " + err.Error(), stored, err
	}
	return out.Summary, stored, nil
}

func stepName(s protocol.Step) string {
	if s.Name != "" {
		return s.Name
	}
	return s.Type
}

// cancelStatus is a stopped build's status: the master cancelling it is
// final, the worker going away leaves it to be retried elsewhere.
func cancelStatus(ctx context.Context) string {
	if errors.Is(context.Cause(ctx), errWorkerStopped) {
		return protocol.StatusLost
	}
	return protocol.StatusCancelled
}
