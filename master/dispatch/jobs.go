package dispatch

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go"

	"github.com/kiln-build/kiln/master/sched"
	"github.com/kiln-build/kiln/protocol"
)

// NATSSender delivers the scheduler's jobs over NATS: a request on the
// worker's job subject, answered with a protocol.Ack.
type NATSSender struct {
	nc *nats.Conn
}

var _ sched.Sender = (*NATSSender)(nil)

// NewNATSSender returns a sender publishing on nc.
func NewNATSSender(nc *nats.Conn) *NATSSender { return &NATSSender{nc: nc} }

// SendJob implements sched.Sender. The scheduler bounds ctx by its job
// timeout, so a worker that never answers costs that long and no more.
func (s *NATSSender) SendJob(ctx context.Context, worker string, job protocol.Job) (protocol.Ack, error) {
	msg, err := s.nc.RequestWithContext(ctx, protocol.JobSubject(worker), protocol.Encode(job))
	if err != nil {
		return protocol.Ack{}, fmt.Errorf("%w: %w", sched.ErrNotDelivered, err)
	}
	var ack protocol.Ack
	if err := protocol.Decode(msg.Data, &ack); err != nil {
		return protocol.Ack{}, fmt.Errorf("bad ack: %w", err)
	}
	return ack, nil
}
