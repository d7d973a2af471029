package master

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/kiln-build/kiln/builders"
	"github.com/kiln-build/kiln/master/state"
	"github.com/kiln-build/kiln/protocol"
)

// handleWorkerMsg dispatches one message from a worker subject. Anything
// malformed is logged and dropped: a confused worker must not take the
// master down.
func (m *Master) handleWorkerMsg(ctx context.Context, msg *nats.Msg) {
	tok := strings.Split(msg.Subject, ".")
	if len(tok) != 4 {
		m.log.Warn("dropped message on unexpected subject", "subject", msg.Subject)
		return
	}
	name, kind := tok[2], tok[3]
	w, ok := m.workerConfig(name)
	if !ok {
		m.log.Warn("dropped message from unconfigured worker", "worker", name, "subject", msg.Subject)
		return
	}
	log := m.log.With("worker", name)
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
			r, err := m.sched.Hello(ctx, h, w.Slots)
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
		for _, b := range m.sched.Heartbeat(hb) {
			m.sendCancel(name, b, "the master gave this build away")
		}
	case "event":
		var ev protocol.StepEvent
		if err := protocol.Decode(msg.Data, &ev); err != nil || ev.Worker != name {
			log.Warn("dropped malformed step event", "err", err, "claimed", ev.Worker)
			return
		}
		out, err := m.node.Apply1(ctx, state.Command{Step: &state.StepCmd{Event: ev}})
		m.ackOutcome(msg, out, err, log.With("build", ev.Build))
	case "result":
		m.handleResult(ctx, msg, name)
	default:
		log.Warn("dropped message of unknown kind", "subject", msg.Subject)
	}
}

func (m *Master) workerConfig(name string) (builders.Worker, bool) {
	workers := m.matrix.Load().Config.Workers // the current config: workers come and go on reload
	i := slices.IndexFunc(workers, func(w builders.Worker) bool { return w.Name == name })
	if i < 0 {
		return builders.Worker{}, false
	}
	return workers[i], true
}

var sha256Hex = regexp.MustCompile(`^[0-9a-f]{64}$`)

var resultStatuses = []string{protocol.StatusSuccess, protocol.StatusFailure, protocol.StatusException, protocol.StatusCancelled}

func (m *Master) handleResult(ctx context.Context, msg *nats.Msg, name string) {
	var r protocol.Result
	if err := protocol.Decode(msg.Data, &r); err != nil || r.Worker != name || !slices.Contains(resultStatuses, r.Status) {
		m.log.Warn("dropped malformed result", "worker", name, "err", err, "claimed", r.Worker, "status", r.Status)
		return
	}
	log := m.log.With("worker", name, "build", r.Build, "attempt", r.Attempt)
	if missing := m.missingArtifacts(ctx, r.Artifacts); missing != "" {
		// The worker claims files the store does not hold: the build's
		// outputs cannot be trusted, so it ends as an exception.
		log.Warn("result names artifacts not in the store", "missing", missing)
		r.Status = protocol.StatusException
		r.Summary = "artifacts missing from the store: " + missing
	}
	out, err := m.finishResult(ctx, r, log)
	m.ackOutcome(msg, out, err, log)
	if err == nil && !out.Stale && !out.Duplicate {
		log.Info("build finished", "status", r.Status)
	}
	m.sched.Wake()
}

func (m *Master) missingArtifacts(ctx context.Context, arts []protocol.Artifact) string {
	var missing []string
	for _, a := range arts {
		if !sha256Hex.MatchString(a.SHA256) {
			missing = append(missing, a.Name+" (bad sha256)")
			continue
		}
		info, err := m.objects.GetInfo(ctx, a.SHA256)
		if err != nil || int64(info.Size) != a.Size {
			missing = append(missing, a.Name)
		}
	}
	return strings.Join(missing, ", ")
}

// ackOutcome answers a step event or result. Without a committed outcome
// (not leader, raft trouble) it stays silent so the worker repeats.
func (m *Master) ackOutcome(msg *nats.Msg, out state.Outcome, err error, log interface {
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

func (m *Master) sendCancel(worker, build, reason string) {
	if err := m.nc.Publish(protocol.CancelSubject(worker), protocol.Encode(protocol.Cancel{V: protocol.Version, Build: build, Reason: reason})); err != nil {
		m.log.Warn("cancel not sent", "worker", worker, "build", build, "err", err)
	}
}
