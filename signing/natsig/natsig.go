// Package natsig carries signing requests over NATS request/reply, for a
// signer on another host than the master.
//
// Each client publishes on its own subject, PREFIX.<user> (for example
// kiln.signer.prod.sign.worker-3), and the NATS server's subject permissions
// let user worker-3 publish on that subject only. The agent takes the last
// subject token as the requester's identity: the server has already checked
// that the publisher is that user. Unlock and status are never served here,
// so a passphrase never travels over NATS.
package natsig

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/kiln-build/kiln/signing"
)

// DefaultPrefix is the subject prefix of an agent named name.
func DefaultPrefix(name string) string { return "kiln.signer." + name + ".sign" }

// Serve answers requests on prefix.* until ctx ends, then drains the
// subscription so requests in hand are answered.
func Serve(ctx context.Context, nc *nats.Conn, prefix string, a *signing.Agent, log *slog.Logger) error {
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "signer", "transport", "nats", "subject", prefix+".*")
	msgs := make(chan *nats.Msg, 64)
	sub, err := nc.ChanQueueSubscribe(prefix+".*", "kiln-signer", msgs)
	if err != nil {
		return fmt.Errorf("subscribe %s.*: %w", prefix, err)
	}
	if err := nc.FlushTimeout(10 * time.Second); err != nil {
		sub.Unsubscribe()
		return fmt.Errorf("subscribe %s.*: %w", prefix, err)
	}
	log.Info("serving signing requests")
	for {
		select {
		case <-ctx.Done():
			if err := sub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
				return fmt.Errorf("unsubscribe %s.*: %w", prefix, err)
			}
			return nil
		case m := <-msgs:
			user := m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]
			out := a.Handle(ctx, signing.NATSIdentity(user), m.Data, false)
			if err := m.Respond(out); err != nil {
				log.Warn("reply failed", "user", user, "err", err)
			}
		}
	}
}

// NewClient returns the signing client for NATS: subject is the client's own
// subject, DefaultPrefix(agent)+"."+user.
func NewClient(nc *nats.Conn, subject string) *signing.RemoteClient {
	return signing.NewClient(&transport{nc: nc, subject: subject})
}

// DefaultTimeout bounds a request whose context has no deadline.
const DefaultTimeout = 2 * time.Minute

type transport struct {
	nc      *nats.Conn
	subject string
}

func (t *transport) MaxMessage() int { return int(t.nc.MaxPayload()) }

func (t *transport) Close() error { return nil }

func (t *transport) RoundTrip(ctx context.Context, msg []byte) ([]byte, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	m, err := t.nc.RequestWithContext(ctx, t.subject, msg)
	if err == nil {
		return m.Data, nil
	}
	// A publish the server's permissions refuse is dropped with an async
	// -ERR; the request itself only times out.
	if last := t.nc.LastError(); errors.Is(last, nats.ErrPermissionViolation) && strings.Contains(last.Error(), t.subject) {
		return nil, fmt.Errorf("%w: NATS user may not publish on %s: %v", signing.ErrDenied, t.subject, last)
	}
	if errors.Is(err, nats.ErrNoResponders) {
		return nil, fmt.Errorf("no signer is listening on %s: %w", t.subject, err)
	}
	return nil, fmt.Errorf("request on %s: %w", t.subject, err)
}
