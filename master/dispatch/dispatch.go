// Package dispatch is the master's side of the worker conversation, in one
// place: hellos, heartbeats, step events and results arrive here over NATS,
// are checked against the sender and the current config, and reach the
// scheduler, the publisher or raft; jobs and cancels leave from here.
package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kiln-build/kiln/builders"
	"github.com/kiln-build/kiln/master/state"
	"github.com/kiln-build/kiln/protocol"
)

// Scheduler is what the conversation tells the scheduler.
type Scheduler interface {
	Hello(ctx context.Context, h protocol.Hello, configuredSlots int) (protocol.HelloReply, error)
	// Heartbeat returns the builds the worker runs that are no longer its.
	Heartbeat(hb protocol.Heartbeat) []string
	Wake()
}

// Finisher records a worker's result (publishing its packages first).
type Finisher interface {
	FinishResult(ctx context.Context, r protocol.Result, log *slog.Logger) (state.Outcome, error)
}

// Options are what a Dispatcher works with.
type Options struct {
	Conn      *nats.Conn
	Node      *state.Node
	Scheduler Scheduler
	Finisher  Finisher
	// Objects is the artifact store results must name files in.
	Objects jetstream.ObjectStore
	// Workers are the current config's workers: workers come and go on
	// reload.
	Workers func() []builders.Worker
	// MaxAttempts ends a build lost this many times as an exception.
	MaxAttempts int
	Logger      *slog.Logger
}

// Dispatcher handles what workers send.
type Dispatcher struct {
	o   Options
	log *slog.Logger

	// handlers counts message handlers in flight; closing stops new ones,
	// since NATS may still deliver while the subscription drains.
	handlersMu sync.Mutex
	closing    bool
	handlers   sync.WaitGroup
}

// New returns a Dispatcher; Run receives.
func New(o Options) *Dispatcher {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Dispatcher{o: o, log: o.Logger}
}

// Run handles worker messages until ctx ends, then waits for the handlers
// in flight. Every master runs it: a follower's raft applies fail and the
// worker repeats its message to the leader.
func (d *Dispatcher) Run(ctx context.Context) error {
	sub, err := d.o.Conn.Subscribe(protocol.AllWorkerSubjects, func(msg *nats.Msg) {
		d.handlersMu.Lock()
		defer d.handlersMu.Unlock()
		if d.closing {
			return
		}
		d.handlers.Add(1)
		go func() {
			defer d.handlers.Done()
			d.handle(ctx, msg)
		}()
	})
	if err != nil {
		return fmt.Errorf("subscribe to worker subjects: %w", err)
	}
	sub.SetPendingLimits(-1, -1)
	<-ctx.Done()
	_ = sub.Unsubscribe()
	d.handlersMu.Lock()
	d.closing = true
	d.handlersMu.Unlock()
	d.handlers.Wait()
	return nil
}

// handle dispatches one message from a worker subject. Anything malformed
// is logged and dropped: a confused worker must not take the master down.
func (d *Dispatcher) handle(ctx context.Context, msg *nats.Msg) {
	tok := strings.Split(msg.Subject, ".")
	if len(tok) != 4 {
		d.log.Warn("dropped message on unexpected subject", "subject", msg.Subject)
		return
	}
	name, kind := tok[2], tok[3]
	w, ok := d.workerConfig(name)
	if !ok {
		d.log.Warn("dropped message from unconfigured worker", "worker", name, "subject", msg.Subject)
		return
	}
	log := d.log.With("worker", name)
	switch kind {
	case "hello":
		var h protocol.Hello
		if err := protocol.Decode(msg.Data, &h); err != nil || h.Worker != name {
			log.Warn("dropped malformed hello", "err", err, "claimed", h.Worker)
			return
		}
		reply := protocol.HelloReply{V: protocol.Version}
		if h.V != protocol.Version {
			reply.Error = fmt.Sprintf("worker speaks protocol %d, this master speaks %d: upgrade the older side", h.V, protocol.Version)
			log.Warn("refused worker", "reason", reply.Error)
		} else {
			r, err := d.o.Scheduler.Hello(ctx, h, w.Slots)
			if err != nil {
				log.Warn("hello not recorded; the worker will retry", "err", err)
				return
			}
			reply = r
			if reply.OK {
				log.Info("worker connected", "tags", h.Tags, "slots", h.Slots, "running", len(h.Running), "cancel", len(reply.Cancel))
			} else {
				log.Warn("refused worker", "reason", reply.Error, "instance", h.Instance)
			}
		}
		respond(msg, reply)
	case "heartbeat":
		var hb protocol.Heartbeat
		if err := protocol.Decode(msg.Data, &hb); err != nil || hb.Worker != name {
			log.Warn("dropped malformed heartbeat", "err", err, "claimed", hb.Worker)
			return
		}
		for _, b := range d.o.Scheduler.Heartbeat(hb) {
			d.Cancel(name, b, "the master gave this build away")
		}
	case "event":
		var ev protocol.StepEvent
		if err := protocol.Decode(msg.Data, &ev); err != nil || ev.Worker != name {
			log.Warn("dropped malformed step event", "err", err, "claimed", ev.Worker)
			return
		}
		out, err := d.o.Node.Apply1(ctx, state.Command{Step: &state.StepCmd{Event: ev}})
		ackOutcome(msg, out, err, log.With("build", ev.Build))
	case "result":
		d.result(ctx, msg, name)
	default:
		log.Warn("dropped message of unknown kind", "subject", msg.Subject)
	}
}

func (d *Dispatcher) workerConfig(name string) (builders.Worker, bool) {
	workers := d.o.Workers()
	i := slices.IndexFunc(workers, func(w builders.Worker) bool { return w.Name == name })
	if i < 0 {
		return builders.Worker{}, false
	}
	return workers[i], true
}

var sha256Hex = regexp.MustCompile(`^[0-9a-f]{64}$`)

func (d *Dispatcher) result(ctx context.Context, msg *nats.Msg, name string) {
	var r protocol.Result
	if err := protocol.Decode(msg.Data, &r); err != nil || r.Worker != name || !slices.Contains(protocol.ResultStatuses, r.Status) {
		d.log.Warn("dropped malformed result", "worker", name, "err", err, "claimed", r.Worker, "status", r.Status)
		return
	}
	log := d.log.With("worker", name, "build", r.Build, "attempt", r.Attempt)
	if r.Status == protocol.StatusLost {
		d.lost(ctx, msg, r, log)
		return
	}
	if missing := d.missingArtifacts(ctx, r.Artifacts); missing != "" {
		// The worker claims files the store does not hold: the build's
		// outputs cannot be trusted, so it ends as an exception.
		log.Warn("result names artifacts not in the store", "missing", missing)
		r.Status = protocol.StatusException
		r.Summary = "artifacts missing from the store: " + missing
	}
	out, err := d.o.Finisher.FinishResult(ctx, r, log)
	ackOutcome(msg, out, err, log)
	if err == nil && !out.Stale && !out.Duplicate {
		log.Info("build finished", "status", r.Status)
	}
	d.o.Scheduler.Wake()
}

// lost takes a worker's word that it stopped mid-build: the attempt ends
// as lost and the build goes back to the queue at once, as it would after
// the heartbeat timeout.
func (d *Dispatcher) lost(ctx context.Context, msg *nats.Msg, r protocol.Result, log *slog.Logger) {
	out, err := d.o.Node.Apply1(ctx, state.Command{Lost: &state.LostCmd{Build: state.ParseID(r.Build), Attempt: r.Attempt, Worker: r.Worker, Reason: r.Summary,
		MaxAttempts: d.o.MaxAttempts, Time: time.Now()}})
	ackOutcome(msg, out, err, log)
	if err == nil && !out.Stale {
		log.Info("build lost by its worker; queued again", "reason", r.Summary)
	}
	d.o.Scheduler.Wake()
}

func (d *Dispatcher) missingArtifacts(ctx context.Context, arts []protocol.Artifact) string {
	var missing []string
	for _, a := range arts {
		if !sha256Hex.MatchString(a.SHA256) {
			missing = append(missing, a.Name+" (bad sha256)")
			continue
		}
		info, err := d.o.Objects.GetInfo(ctx, a.SHA256)
		if err != nil || int64(info.Size) != a.Size {
			missing = append(missing, a.Name)
		}
	}
	return strings.Join(missing, ", ")
}

// ackOutcome answers a step event or result. Without a committed outcome
// (not leader, raft trouble) it stays silent so the worker repeats.
func ackOutcome(msg *nats.Msg, out state.Outcome, err error, log interface {
	Warn(string, ...any)
}) {
	ack := protocol.Ack{V: protocol.Version, OK: true}
	switch {
	case out.Stale:
		// The attempt was given away or cancelled: tell the worker to stop.
		ack.Cancel = true
	case errors.Is(err, state.ErrNotFound):
		ack.Cancel, ack.Error = true, "unknown build"
	case err != nil:
		log.Warn("worker message not applied; the worker will repeat it", "err", err)
		return
	}
	respond(msg, ack)
}

func respond(msg *nats.Msg, v any) {
	if msg.Reply == "" {
		return
	}
	_ = msg.Respond(protocol.Encode(v))
}

// Cancel tells a worker to stop a build.
func (d *Dispatcher) Cancel(worker, build, reason string) {
	if err := d.o.Conn.Publish(protocol.CancelSubject(worker), protocol.Encode(protocol.Cancel{V: protocol.Version, Build: build, Reason: reason})); err != nil {
		d.log.Warn("cancel not sent", "worker", worker, "build", build, "err", err)
	}
}
