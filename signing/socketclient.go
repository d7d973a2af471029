package signing

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"
)

// DialSocket returns a Client for the agent listening on the Unix socket at
// path. One connection is kept and reused; calls are serialized on it, and it
// is redialled after an error.
func DialSocket(path string) (*RemoteClient, error) {
	t := &socketTransport{path: path}
	c, err := t.dial()
	if err != nil {
		return nil, err
	}
	t.conn = c
	return NewClient(t), nil
}

type socketTransport struct {
	path string
	mu   sync.Mutex
	conn net.Conn
}

func (t *socketTransport) dial() (net.Conn, error) {
	c, err := net.DialTimeout("unix", t.path, 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("connect to signer at %s: %w", t.path, err)
	}
	return c, nil
}

func (t *socketTransport) MaxMessage() int { return 0 }

// Local marks the socket as fit to carry a passphrase (see Unlock).
func (t *socketTransport) Local() bool { return true }

func (t *socketTransport) RoundTrip(ctx context.Context, msg []byte) ([]byte, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.conn == nil {
		c, err := t.dial()
		if err != nil {
			return nil, err
		}
		t.conn = c
	}
	// A cancelled ctx unblocks the read by expiring the deadline; the
	// connection is then dropped since a reply may still be in flight.
	stop := context.AfterFunc(ctx, func() { t.conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if err := writeFrame(t.conn, msg); err != nil {
		// An agent that refuses a peer replies and hangs up at once; its
		// reason may be waiting even though our write failed.
		if out, rerr := readFrame(t.conn, maxReplyBytes); rerr == nil {
			t.fail(ctx, err)
			return out, nil
		}
		return nil, t.fail(ctx, err)
	}
	out, err := readFrame(t.conn, maxReplyBytes)
	if err != nil {
		return nil, t.fail(ctx, fmt.Errorf("read reply: %w", err))
	}
	return out, nil
}

// maxReplyBytes bounds what the client buffers: a clearsigned 64 MiB batch
// comes back a little larger than it went.
const maxReplyBytes = 1 << 30

func (t *socketTransport) fail(ctx context.Context, err error) error {
	t.conn.Close()
	t.conn = nil
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

func (t *socketTransport) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.conn == nil {
		return nil
	}
	err := t.conn.Close()
	t.conn = nil
	return err
}
