package worker

import (
	"time"

	"github.com/kiln-build/kiln/protocol"
)

// reporter delivers a build's step events in order, each repeated until the
// master acks it, without holding up the build: steps go on while the
// master is restarting, and the events follow.
type reporter struct {
	w     *Worker
	b     *build
	queue chan protocol.StepEvent
	done  chan struct{}
}

func (w *Worker) newReporter(b *build, nsteps int) *reporter {
	// Each step sends at most two events, so the queue never blocks a build.
	r := &reporter{w: w, b: b, queue: make(chan protocol.StepEvent, 2*nsteps), done: make(chan struct{})}
	go r.run()
	return r
}

func (r *reporter) run() {
	defer close(r.done)
	subject := protocol.EventSubject(r.w.cfg.Name)
	for ev := range r.queue {
		var ack protocol.Ack
		if err := r.w.request(r.w.base, subject, ev, &ack); err != nil {
			continue // the worker is stopping; later events fail alike
		}
		if ack.Cancel {
			r.b.log.Info("master cancelled the build", "step", ev.Step)
			r.b.cancel(errCancelled)
		}
		if !ack.OK && ack.Error != "" {
			r.b.log.Warn("master refused a step event", "step", ev.Step, "err", ack.Error)
		}
	}
}

func (r *reporter) send(ev protocol.StepEvent) { r.queue <- ev }

// skip reports the steps that will not run.
func (r *reporter) skip(first int, specs []protocol.Step) {
	now := time.Now().UTC()
	for i, s := range specs {
		r.send(protocol.StepEvent{
			V: protocol.Version, Worker: r.w.cfg.Name, Build: r.b.job.Build, Attempt: r.b.job.Attempt,
			Step: first + i, Name: stepName(s), Status: protocol.StatusSkipped, Started: now, Ended: now,
		})
	}
}

// Close waits until every queued event was delivered or the worker stopped.
func (r *reporter) Close() {
	close(r.queue)
	<-r.done
}
