package worker

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kiln-build/kiln/protocol"
	"github.com/kiln-build/kiln/steps"
)

const (
	// logBatchDelay trades a few ms of latency for far fewer messages when
	// a step prints fast; a person watching cannot tell.
	logBatchDelay = 20 * time.Millisecond
	// Bounds of one chunk, well below NATS's default 1 MB message limit.
	chunkMaxLines = 500
	chunkMaxBytes = 64 << 10
	// logCloseTimeout bounds how long a finished build waits for its log to
	// reach the stream while the master is unreachable.
	logCloseTimeout = 30 * time.Second
)

// logStream publishes one attempt's log lines into the KILN_LOGS stream,
// in order, batched, each chunk stored before the next is sent. Message IDs
// make a publish retried after a lost ack land once.
type logStream struct {
	w       *Worker
	job     protocol.Job
	subject string

	mu      sync.Mutex
	pending []protocol.LogChunk
	bytes   int // in the last pending chunk

	kick    chan struct{}
	closing chan struct{}
	ctx     context.Context
	stop    context.CancelFunc
	done    chan struct{}
	seq     int
}

func (w *Worker) newLogStream(job protocol.Job) *logStream {
	ctx, stop := context.WithCancel(w.base)
	s := &logStream{
		w: w, job: job, subject: protocol.LogSubject(w.cfg.Name, job.Build),
		kick: make(chan struct{}, 1), closing: make(chan struct{}),
		ctx: ctx, stop: stop, done: make(chan struct{}),
	}
	go s.run()
	return s
}

// stepLog is the steps.Log of one step.
type stepLog struct {
	s    *logStream
	step int
}

func (l stepLog) Line(text string) { l.s.add(l.step, text) }

func (s *logStream) step(i int) steps.Log { return stepLog{s, i} }

func (s *logStream) add(step int, line string) {
	s.mu.Lock()
	n := len(s.pending)
	if n == 0 || s.pending[n-1].Step != step || len(s.pending[n-1].Lines) >= chunkMaxLines || s.bytes+len(line) > chunkMaxBytes {
		s.pending = append(s.pending, protocol.LogChunk{Build: s.job.Build, Attempt: s.job.Attempt, Step: step, Time: time.Now().UTC()})
		s.bytes = 0
		n++
	}
	s.pending[n-1].Lines = append(s.pending[n-1].Lines, line)
	s.bytes += len(line)
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

func (s *logStream) run() {
	defer close(s.done)
	for {
		select {
		case <-s.kick:
		case <-s.closing:
			s.flush()
			return
		case <-s.ctx.Done():
			return
		}
		select {
		case <-time.After(logBatchDelay):
		case <-s.closing:
		case <-s.ctx.Done():
		}
		s.flush()
	}
}

func (s *logStream) flush() {
	s.mu.Lock()
	chunks := s.pending
	s.pending, s.bytes = nil, 0
	s.mu.Unlock()
	for _, c := range chunks {
		if err := s.publish(c); err != nil {
			s.w.log.Warn("log lines lost", "build", s.job.Build, "step", c.Step, "lines", len(c.Lines), "err", err)
		}
	}
}

func (s *logStream) publish(c protocol.LogChunk) error {
	s.seq++
	id := fmt.Sprintf("%s.%d.%d", s.job.Build, s.job.Attempt, s.seq)
	data := protocol.Encode(c)
	for attempt := 0; ; attempt++ {
		actx, cancel := context.WithTimeout(s.ctx, requestTimeout)
		_, err := s.w.js.Publish(actx, s.subject, data, jetstream.WithMsgID(id), jetstream.WithExpectStream(protocol.LogStream))
		cancel()
		if err == nil {
			return nil
		}
		if s.ctx.Err() != nil {
			return fmt.Errorf("publish log chunk: %w", err)
		}
		select {
		case <-s.ctx.Done():
			return fmt.Errorf("publish log chunk: %w", s.ctx.Err())
		case <-time.After(backoff(attempt)):
		}
	}
}

// Close publishes what is left and stops, giving up after logCloseTimeout.
func (s *logStream) Close() {
	close(s.closing)
	select {
	case <-s.done:
	case <-time.After(logCloseTimeout):
		s.stop()
		<-s.done
	}
	s.stop()
}
