package worker

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kiln-build/kiln/protocol"
)

const (
	// requestTimeout bounds one attempt of a request to the master.
	requestTimeout = 5 * time.Second
	maxBackoff     = 10 * time.Second
)

// backoff returns the wait before retry n (0-based): exponential from
// 100ms, capped, with jitter so workers that lost the master together do
// not come back in lockstep.
func backoff(n int) time.Duration {
	d := 100 * time.Millisecond << min(n, 10)
	d = min(d, maxBackoff)
	return d/2 + rand.N(d/2+1)
}

func (w *Worker) natsOptions() []nats.Option {
	return []nats.Option{
		nats.Name("kiln-worker " + w.cfg.Name),
		nats.UserInfo(w.cfg.Name, w.cfg.Token),
		nats.CustomInboxPrefix(protocol.InboxPrefix(w.cfg.Name)),
		nats.MaxReconnects(-1),
		nats.CustomReconnectDelay(backoff),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			w.log.Warn("disconnected from master", "err", err)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			w.log.Info("reconnected", "url", nc.ConnectedUrlRedacted())
			w.newConnection()
			w.signalHello()
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subject := ""
			if sub != nil {
				subject = sub.Subject
			}
			w.log.Error("nats", "subject", subject, "err", err)
		}),
	}
}

// connect dials until the server answers. A refused login ends Run at once:
// that needs an operator, not patience.
func (w *Worker) connect(ctx context.Context) error {
	for attempt := 0; ; attempt++ {
		nc, err := nats.Connect(w.cfg.NATSURL, w.natsOptions()...)
		if err == nil {
			js, err := jetstream.New(nc)
			if err != nil {
				nc.Close()
				return fmt.Errorf("jetstream: %w", err)
			}
			w.nc, w.js = nc, js
			return nil
		}
		if isAuthError(err) {
			return fmt.Errorf("connect to %s as %s: %w: %w", w.cfg.NATSURL, w.cfg.Name, ErrAuth, err)
		}
		wait := backoff(attempt)
		w.log.Warn("cannot reach master; retrying", "url", w.cfg.NATSURL, "err", err, "in", wait)
		select {
		case <-ctx.Done():
			return fmt.Errorf("connect to %s: %w", w.cfg.NATSURL, ctx.Err())
		case <-w.drained:
			return errDrainedOffline
		case <-time.After(wait):
		}
	}
}

// errDrainedOffline ends connect when Drain comes before the master was
// reached: nothing runs, so there is nothing to wait for.
var errDrainedOffline = errors.New("drained before reaching the master")

func isAuthError(err error) bool {
	return errors.Is(err, nats.ErrAuthorization) || errors.Is(err, nats.ErrAuthExpired) ||
		errors.Is(err, nats.ErrAuthRevoked) || errors.Is(err, nats.ErrAccountAuthExpired) ||
		strings.Contains(strings.ToLower(err.Error()), "authorization violation")
}

// subscribe takes the worker's two inbound subjects and makes sure the
// server allowed them: a permission error arrives asynchronously, so a
// round trip after subscribing is what surfaces it.
func (w *Worker) subscribe() error {
	for subject, handler := range map[string]nats.MsgHandler{
		protocol.JobSubject(w.cfg.Name):    w.onJob,
		protocol.CancelSubject(w.cfg.Name): w.onCancel,
	} {
		if _, err := w.nc.Subscribe(subject, handler); err != nil {
			return fmt.Errorf("subscribe %s: %w", subject, err)
		}
	}
	if err := w.nc.Flush(); err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	if err := w.nc.LastError(); errors.Is(err, nats.ErrPermissionViolation) {
		return fmt.Errorf("subscribe as %s: %w: %w", w.cfg.Name, ErrAuth, err)
	}
	return nil
}

// request sends msg to subject until a reply decodes into reply, with
// backoff between attempts; the master may be restarting or electing a
// leader. It gives up only when ctx ends.
func (w *Worker) request(ctx context.Context, subject string, msg, reply any) error {
	data := protocol.Encode(msg)
	for attempt := 0; ; attempt++ {
		m, err := w.requestOnce(ctx, subject, data)
		if err == nil {
			if err = protocol.Decode(m.Data, reply); err == nil {
				return nil
			}
			w.log.Warn("malformed reply from master", "subject", subject, "err", err)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("request %s: %w", subject, ctx.Err())
		}
		wait := backoff(attempt)
		w.log.Debug("request unanswered; retrying", "subject", subject, "err", err, "in", wait)
		select {
		case <-ctx.Done():
			return fmt.Errorf("request %s: %w", subject, ctx.Err())
		case <-time.After(wait):
		}
	}
}

// requestOnce makes one attempt. A reconnect ends it early: a request or
// reply in flight while the connection dropped is lost, and waiting out
// the full timeout would stall every build behind it.
func (w *Worker) requestOnce(ctx context.Context, subject string, data []byte) (*nats.Msg, error) {
	w.mu.Lock()
	reconnected := w.reconnected
	w.mu.Unlock()
	rctx, cancel := context.WithTimeout(ctx, requestTimeout)
	var watcher sync.WaitGroup
	defer watcher.Wait()
	defer cancel()
	watcher.Go(func() {
		select {
		case <-reconnected:
			cancel()
		case <-rctx.Done():
		}
	})
	return w.nc.RequestWithContext(rctx, subject, data)
}

// newConnection wakes every request waiting on the old connection.
func (w *Worker) newConnection() {
	w.mu.Lock()
	defer w.mu.Unlock()
	close(w.reconnected)
	w.reconnected = make(chan struct{})
}
