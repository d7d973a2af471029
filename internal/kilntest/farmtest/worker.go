package farmtest

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/kiln-build/kiln/internal/kilntest"
	"github.com/kiln-build/kiln/worker"
)

// Worker is a running worker.
type Worker struct {
	Worker *worker.Worker
	Name   string

	t      testing.TB
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// WorkerOption configures StartWorker.
type WorkerOption func(*worker.Config)

// Tags are the worker's configured tags, on top of those it detects.
func Tags(tags ...string) WorkerOption { return func(c *worker.Config) { c.Tags = tags } }

// Slots is how many builds the worker runs at once; default 1.
func Slots(n int) WorkerOption { return func(c *worker.Config) { c.Slots = n } }

// Heartbeat is how often the worker reports until the master's hello reply
// says otherwise; default 200ms, so a test sees a silent worker soon.
func Heartbeat(d time.Duration) WorkerOption {
	return func(c *worker.Config) { c.HeartbeatInterval = d }
}

// WorkDir is where builds run; default a fresh temporary directory, since
// a starting worker clears what it finds there.
func WorkDir(dir string) WorkerOption { return func(c *worker.Config) { c.WorkDir = dir } }

// Probe replaces the detection of the host's tags, for a worker whose tags
// must not depend on the machine the test runs on.
func Probe(p worker.Probe) WorkerOption { return func(c *worker.Config) { c.Probe = p } }

// WorkerLogger replaces the default kilntest.Logger(t).
func WorkerLogger(l *slog.Logger) WorkerOption { return func(c *worker.Config) { c.Logger = l } }

// WorkerConfig edits the worker's configuration after the other options,
// for what the helpers here do not name.
func WorkerConfig(f func(*worker.Config)) WorkerOption { return WorkerOption(f) }

// StartWorker runs the real worker package in-process, logging in to the
// NATS server at natsURL as name with password, until the test ends or
// Stop. It does not wait for the worker to reach the master.
func StartWorker(t testing.TB, natsURL, name, password string, opts ...WorkerOption) *Worker {
	t.Helper()
	cfg := worker.Config{Name: name, NATSURL: natsURL, Token: password, HeartbeatInterval: 200 * time.Millisecond}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.WorkDir == "" {
		cfg.WorkDir = t.TempDir()
	}
	if cfg.Logger == nil {
		cfg.Logger = kilntest.Logger(t)
	}
	ww, err := worker.New(cfg)
	if err != nil {
		t.Fatalf("worker %s: %v", name, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &Worker{Worker: ww, Name: name, t: t, cancel: cancel, done: make(chan struct{})}
	go func() {
		w.err = ww.Run(ctx)
		close(w.done)
	}()
	t.Cleanup(func() {
		select {
		case <-w.done:
			// It ended on its own: that was the test's business.
			return
		default:
		}
		if err := w.Stop(); err != nil {
			t.Errorf("worker %s: %v", name, err)
		}
	})
	return w
}

// Stop cancels the worker and waits for Run to return. It returns Run's
// error, except the cancellation itself.
func (w *Worker) Stop() error {
	w.t.Helper()
	w.cancel()
	select {
	case <-w.done:
	case <-time.After(30 * time.Second):
		w.t.Errorf("worker %s did not stop within 30s of its context ending", w.Name)
		return nil
	}
	if errors.Is(w.err, context.Canceled) {
		return nil
	}
	return w.err
}

// Done is closed when Run has returned, for tests of how a worker ends.
func (w *Worker) Done() <-chan struct{} { return w.done }

// Err is what Run returned, once Done is closed.
func (w *Worker) Err() error {
	<-w.done
	return w.err
}
