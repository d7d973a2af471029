package worker

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/kiln-build/kiln/protocol"
)

// Why a build's context was cancelled; the cause decides what it reports.
var (
	errCancelled     = errors.New("cancelled by the master")
	errGivenAway     = errors.New("the master gave this build to another worker")
	errWorkerStopped = errors.New("worker shut down")
)

// Reasons a job is refused, in its Ack.
const (
	refuseDraining = "worker is draining"
	refuseFull     = "no free slot"
)

func (w *Worker) onJob(m *nats.Msg) {
	// Until the master has accepted this process, a job on the worker's
	// subject may be meant for another process of the same name: a refused
	// process stays silent and leaves the answer to that one.
	select {
	case <-w.admitted:
	case <-w.base.Done():
		w.log.Debug("job ignored: the worker is stopping")
		return
	}
	var job protocol.Job
	if err := protocol.Decode(m.Data, &job); err != nil {
		w.log.Warn("dropping malformed job", "err", err)
		w.ack(m, protocol.Ack{Error: "bad message: " + err.Error()})
		return
	}
	if err := checkJob(job); err != "" {
		w.log.Warn("dropping malformed job", "build", job.Build, "err", err)
		w.ack(m, protocol.Ack{Error: "bad message: " + err})
		return
	}
	log := w.log.With("build", job.Build, "attempt", job.Attempt)

	w.mu.Lock()
	running, dup := w.builds[job.Build]
	if dup && running.job.Attempt == job.Attempt {
		// The master repeats a job whose ack it missed: this is the same attempt.
		w.mu.Unlock()
		w.ack(m, protocol.Ack{OK: true})
		return
	}
	refusal := ""
	switch {
	case dup:
		refusal = fmt.Sprintf("attempt %d of this build still runs here", running.job.Attempt)
	case w.draining:
		refusal = refuseDraining
	case len(w.builds) >= w.cfg.Slots:
		refusal = refuseFull
	}
	if refusal != "" {
		w.mu.Unlock()
		log.Info("refusing job", "reason", refusal)
		w.ack(m, protocol.Ack{Error: refusal})
		return
	}
	w.startBuild(job, log)
	w.mu.Unlock()
	w.ack(m, protocol.Ack{OK: true})
	log.Info("build accepted", "builder", job.Builder, "steps", len(job.Steps))
}

// checkJob returns why a job cannot be run, or "".
func checkJob(job protocol.Job) string {
	switch {
	case job.V < 1:
		return "no protocol version"
	case job.Build == "" || strings.ContainsAny(job.Build, ".*> \t\r\n/"):
		return fmt.Sprintf("build ID %q is not one NATS subject token", job.Build)
	case len(job.Steps) == 0:
		return "no steps"
	}
	return ""
}

func (w *Worker) ack(m *nats.Msg, a protocol.Ack) {
	if m.Reply == "" {
		return
	}
	a.V = protocol.Version
	if err := m.Respond(protocol.Encode(a)); err != nil {
		w.log.Warn("ack", "subject", m.Subject, "err", err)
	}
}

func (w *Worker) onCancel(m *nats.Msg) {
	var c protocol.Cancel
	if err := protocol.Decode(m.Data, &c); err != nil || c.Build == "" {
		w.log.Warn("dropping malformed cancel", "err", err)
		w.ack(m, protocol.Ack{Error: "bad message"})
		return
	}
	found := w.cancelBuild(c.Build, errCancelled)
	w.log.Info("cancel requested", "build", c.Build, "reason", c.Reason, "running", found)
	w.ack(m, protocol.Ack{OK: true})
}

// cancelBuild stops a running build; it reports whether one was running.
func (w *Worker) cancelBuild(id string, cause error) bool {
	w.mu.Lock()
	b, ok := w.builds[id]
	w.mu.Unlock()
	if ok {
		b.cancel(cause)
	}
	return ok
}

// buildContext derives a build's context from the worker's: the worker
// stopping cancels every build with errWorkerStopped as the cause.
func buildContext(parent context.Context) (context.Context, context.CancelCauseFunc) {
	ctx, cancel := context.WithCancelCause(context.WithoutCancel(parent))
	stop := context.AfterFunc(parent, func() { cancel(errWorkerStopped) })
	return ctx, func(cause error) {
		stop()
		cancel(cause)
	}
}
