package signing

import (
	"context"
	"encoding/json"
	"fmt"
)

// Transport carries one encoded message to an agent and returns the reply.
// The Unix socket and NATS each provide one; RemoteClient does the rest.
type Transport interface {
	RoundTrip(ctx context.Context, msg []byte) ([]byte, error)
	// MaxMessage is the largest message the transport carries (NATS's
	// max_payload), or 0 for no limit of its own.
	MaxMessage() int
	Close() error
}

// RemoteClient is the one Client master and workers use, whatever the
// transport.
type RemoteClient struct {
	t Transport
}

var _ Client = (*RemoteClient)(nil)

// NewClient wraps a transport.
func NewClient(t Transport) *RemoteClient { return &RemoteClient{t: t} }

// Close closes the transport.
func (c *RemoteClient) Close() error { return c.t.Close() }

// Sign sends reqs, split into as few messages as the transport's size limit
// allows. Each message is all-or-nothing at the agent; a batch split over
// several messages may be partly signed (and audited) when it fails.
func (c *RemoteClient) Sign(ctx context.Context, reqs []Request) ([]Response, error) {
	chunks, err := c.split(reqs)
	if err != nil {
		return nil, err
	}
	out := make([]Response, 0, len(reqs))
	for _, chunk := range chunks {
		var rep reply
		if err := c.call(ctx, envelope{Op: opSign, Requests: chunk}, &rep); err != nil {
			return nil, err
		}
		if len(rep.Responses) != len(chunk) {
			return nil, fmt.Errorf("sign: signer answered %d items for %d", len(rep.Responses), len(chunk))
		}
		out = append(out, rep.Responses...)
	}
	return out, nil
}

// encodedSize over-estimates an item's JSON size: base64 data plus fields.
func encodedSize(r Request) int { return (len(r.Data)+2)/3*4 + len(r.Name)*6 + len(r.Key)*6 + 128 }

func (c *RemoteClient) split(reqs []Request) ([][]Request, error) {
	limit := c.t.MaxMessage()
	if limit <= 0 {
		return [][]Request{reqs}, nil
	}
	const envelopeOverhead = 256
	var chunks [][]Request
	start, size := 0, envelopeOverhead
	for i, r := range reqs {
		n := encodedSize(r)
		if n+envelopeOverhead > limit {
			return nil, fmt.Errorf("sign %s: %w: %d bytes encoded, transport limit %d", r.Name, ErrTooLarge, n, limit)
		}
		if size+n > limit {
			chunks = append(chunks, reqs[start:i])
			start, size = i, envelopeOverhead
		}
		size += n
	}
	return append(chunks, reqs[start:]), nil
}

// PublicKey asks for the armored public key of key (name or fingerprint).
func (c *RemoteClient) PublicKey(ctx context.Context, key string) ([]byte, error) {
	var rep reply
	if err := c.call(ctx, envelope{Op: opPubKey, Key: key}, &rep); err != nil {
		return nil, err
	}
	return rep.PublicKey, nil
}

// Unlock hands a passphrase to the agent. Only a local transport (the Unix
// socket) may carry it; on any other the passphrase is not sent at all.
func (c *RemoteClient) Unlock(ctx context.Context, key string, passphrase []byte) ([]KeyStatus, error) {
	if l, ok := c.t.(interface{ Local() bool }); !ok || !l.Local() {
		return nil, fmt.Errorf("unlock: %w: a passphrase is only sent over the signer's Unix socket", ErrDenied)
	}
	var rep reply
	err := c.call(ctx, envelope{Op: opUnlock, Key: key, Passphrase: passphrase}, &rep)
	return rep.Keys, err
}

// Status lists the agent's keys and whether each is locked (Unix socket only).
func (c *RemoteClient) Status(ctx context.Context) ([]KeyStatus, error) {
	var rep reply
	err := c.call(ctx, envelope{Op: opStatus}, &rep)
	return rep.Keys, err
}

func (c *RemoteClient) call(ctx context.Context, env envelope, rep *reply) error {
	env.Version = wireVersion
	msg, err := json.Marshal(env)
	if err != nil {
		return fmt.Errorf("%s: encode: %w", env.Op, err)
	}
	// The message may hold a passphrase; it is not needed after sending.
	defer clear(msg)
	raw, err := c.t.RoundTrip(ctx, msg)
	if err != nil {
		return fmt.Errorf("%s: %w", env.Op, err)
	}
	if err := json.Unmarshal(raw, rep); err != nil {
		return fmt.Errorf("%s: decode reply: %w", env.Op, err)
	}
	if rep.Error != nil {
		return rep.Error.err()
	}
	return nil
}

// LocalClient calls an in-process agent as who, with no transport: for
// tests, benchmarks and a master that embeds its signer.
func (a *Agent) LocalClient(who Identity) Client { return localClient{a: a, who: who} }

type localClient struct {
	a   *Agent
	who Identity
}

func (l localClient) Sign(ctx context.Context, reqs []Request) ([]Response, error) {
	return l.a.Sign(ctx, l.who, reqs)
}
func (l localClient) PublicKey(_ context.Context, key string) ([]byte, error) {
	return l.a.PublicKey(key)
}
func (l localClient) Close() error { return nil }
