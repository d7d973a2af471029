package view

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kiln-build/kiln/master/api"
	"github.com/kiln-build/kiln/master/state"
	"github.com/kiln-build/kiln/master/web"
	"github.com/kiln-build/kiln/protocol"
)

// Log reads a build's chunks from the log stream. Every attempt's lines are
// kept; the subject wildcard spans the workers that ran it.
func (v *View) Log(ctx context.Context, id int64, follow bool, fn func(protocol.LogChunk) error) error {
	subject := "kiln.log.*." + state.FormatID(id)
	stream, err := v.o.JetStream.Stream(ctx, protocol.LogStream)
	if err != nil {
		return fmt.Errorf("open log stream: %w", err)
	}
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		return fmt.Errorf("inspect log stream: %w", err)
	}
	if len(info.State.Subjects) == 0 && !follow {
		return nil
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	if err != nil {
		return fmt.Errorf("read log of build %d: %w", id, err)
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("read log of build %d: %w", id, err)
	}
	defer it.Stop()
	ended := false
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		msg, err := it.Next(jetstream.NextMaxWait(500 * time.Millisecond))
		if err != nil {
			if !errors.Is(err, nats.ErrTimeout) {
				return fmt.Errorf("read log of build %d: %w", id, err)
			}
			// Nothing more right now: done unless following a live build.
			// A build that ended before this wait began has its last lines
			// in the stream already, so one more quiet wait closes it.
			if !follow || ended {
				return nil
			}
			ended = v.ended(id)
			continue
		}
		var c protocol.LogChunk
		if err := protocol.Decode(msg.Data(), &c); err != nil {
			v.o.Logger.Warn("skipped malformed log chunk", "build", id, "subject", msg.Subject(), "err", err)
			continue
		}
		if err := fn(c); err != nil {
			return err
		}
		if meta, err := msg.Metadata(); err == nil && meta.NumPending == 0 && (!follow || v.ended(id)) {
			return nil
		}
	}
}

func (v *View) ended(id int64) bool {
	b, err := v.o.Node.FSM.Build(id)
	return err != nil || state.Terminal(b.Status)
}

// Artifact opens one of a build's artifacts from the object store.
func (v *View) Artifact(ctx context.Context, id int64, name string) (io.ReadCloser, api.Artifact, error) {
	b, err := v.o.Node.FSM.Build(id)
	if err != nil {
		return nil, api.Artifact{}, apiError(err)
	}
	i := slices.IndexFunc(b.Artifacts, func(a protocol.Artifact) bool { return a.Name == name })
	if i < 0 {
		return nil, api.Artifact{}, fmt.Errorf("build %d has no artifact %q: %w", id, name, api.ErrNotFound)
	}
	a := api.Artifact(b.Artifacts[i])
	obj, err := v.o.Objects.Get(ctx, a.SHA256)
	if err != nil {
		return nil, a, fmt.Errorf("open artifact %s of build %d: %w", name, id, err)
	}
	return obj, a, nil
}

func (s *Pages) FollowLog(ctx context.Context, id int64, from int64) (<-chan web.LogLine, error) {
	b, err := s.v.o.Node.FSM.Build(id)
	if err != nil {
		return nil, notFound(err)
	}
	names := map[int]string{}
	for _, st := range b.Steps {
		names[st.Index] = st.Name
	}
	stepName := func(i int) string {
		if n, ok := names[i]; ok {
			return n
		}
		// A step that started after the stream was opened.
		if b, err := s.v.o.Node.FSM.Build(id); err == nil {
			for _, st := range b.Steps {
				names[st.Index] = st.Name
			}
		}
		return names[i]
	}
	ch := make(chan web.LogLine, 256)
	go func() {
		defer close(ch)
		// Seq counts lines from the start of the build's log, across
		// attempts, so a resumed stream reads history again and skips
		// what the viewer has: logs are per build and small next to the
		// cost of a per-line index.
		var seq int64
		err := s.v.Log(ctx, id, true, func(c protocol.LogChunk) error {
			step := stepName(c.Step)
			for _, text := range c.Lines {
				seq++
				if seq-1 < from {
					continue
				}
				select {
				case ch <- web.LogLine{Seq: seq - 1, Step: step, Text: text}:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			return nil
		})
		if err != nil && !errors.Is(err, context.Canceled) {
			s.v.o.Logger.Warn("web: log stream ended early", "build", id, "err", err)
		}
	}()
	return ch, nil
}
