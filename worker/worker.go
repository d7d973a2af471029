package worker

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kiln-build/kiln/protocol"
)

// Worker is one build host's daemon.
type Worker struct {
	cfg  Config
	log  *slog.Logger
	tags []string
	// instance tells this process apart from another started under the
	// same name; it survives reconnects, so the master knows them as such.
	instance string

	nc *nats.Conn
	js jetstream.JetStream
	// base is Run's context, the parent of every build and report; set
	// before the first subscription delivers a job. stop ends it early.
	base context.Context
	stop context.CancelCauseFunc

	hello            chan struct{} // a (re)connect asks for a fresh Hello
	admitted         chan struct{} // closed once the master accepted a Hello
	admit            sync.Once
	heartbeatChanged chan struct{} // the master set another interval

	mu        sync.Mutex
	builds    map[string]*build // running, by build ID
	heartbeat time.Duration
	running   bool // Run was called
	draining  bool
	drained   chan struct{} // closed by Drain
	builders  sync.WaitGroup
	idle      chan struct{} // signalled when a build ends
	// reconnected is closed, and replaced, whenever the connection comes back.
	reconnected chan struct{}
	objects     jetstream.ObjectStore
}

// ErrAuth is returned by Run when the NATS server refuses the worker's
// credentials or permissions: retrying will not help, the operator must.
var ErrAuth = errors.New("master refused the worker's credentials")

// ErrDuplicate is returned by Run when the master refuses the worker because
// another process is connected under its name.
var ErrDuplicate = errors.New("duplicate worker")

// New checks cfg and detects the host's tags; it does not connect.
func New(cfg Config) (*Worker, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	log := cfg.Logger.With("component", "worker", "worker", cfg.Name)
	detected, problems := cfg.Probe.Detect()
	for _, p := range problems {
		log.Warn("tag detection incomplete", "err", p)
	}
	// Workspaces left by a worker that crashed mid-build belong to attempts
	// the master has long given away.
	if !cfg.KeepWorkspaces {
		if err := os.RemoveAll(cfg.buildsDir()); err != nil {
			return nil, fmt.Errorf("clear stale workspaces: %w", err)
		}
	}
	for _, dir := range []string{cfg.buildsDir(), cfg.CacheDir} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("create %s: %w", dir, err)
		}
	}
	return &Worker{
		cfg:              cfg,
		log:              log,
		tags:             mergeTags(detected, cfg.Tags),
		instance:         rand.Text(),
		hello:            make(chan struct{}, 1),
		admitted:         make(chan struct{}),
		heartbeatChanged: make(chan struct{}, 1),
		builds:           map[string]*build{},
		heartbeat:        cfg.HeartbeatInterval,
		drained:          make(chan struct{}),
		idle:             make(chan struct{}, 1),
		reconnected:      make(chan struct{}),
	}, nil
}

// Tags returns the tags the worker advertises.
func (w *Worker) Tags() []string { return slices.Clone(w.tags) }

// Drain makes the worker take no new builds; Run returns once the running
// ones have finished and reported.
func (w *Worker) Drain() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.draining {
		w.draining = true
		close(w.drained)
		w.log.Info("draining: taking no new builds", "running", len(w.builds))
	}
}

// Run connects to the master and serves builds until ctx is cancelled
// (running builds are cancelled, and Run returns once they stopped) or
// until Drain was called and the running builds finished.
func (w *Worker) Run(ctx context.Context) error {
	w.mu.Lock()
	if w.running {
		w.mu.Unlock()
		return errors.New("worker: Run called twice")
	}
	w.running = true
	w.mu.Unlock()

	ctx, w.stop = context.WithCancelCause(ctx)
	w.base = ctx
	if err := w.connect(ctx); errors.Is(err, errDrainedOffline) {
		w.log.Info("stopped before reaching the master")
		return nil
	} else if err != nil {
		return err
	}
	defer w.nc.Close()
	if err := w.subscribe(); err != nil {
		return err
	}
	w.log.Info("connected", "url", w.nc.ConnectedUrlRedacted(), "tags", w.tags, "slots", w.cfg.Slots)

	var loops sync.WaitGroup
	loopCtx, stopLoops := context.WithCancel(ctx)
	loops.Go(func() { w.helloLoop(loopCtx) })
	loops.Go(func() { w.heartbeatLoop(loopCtx) })
	w.signalHello()

	select {
	case <-ctx.Done():
		w.log.Info("stopping: cancelling running builds", "running", w.runningIDs())
	case <-w.drained:
		w.waitIdle(ctx)
	}
	// From here no job may start a build: builders.Wait must not race a
	// new builders.Go.
	w.mu.Lock()
	w.draining = true
	w.mu.Unlock()
	// Builds see ctx through their own contexts; wait until every one has
	// stopped and made its last report before the connection goes.
	w.builders.Wait()
	stopLoops()
	loops.Wait()
	if err := w.nc.FlushTimeout(2 * time.Second); err != nil {
		w.log.Warn("flush before exit", "err", err)
	}
	w.log.Info("stopped")
	if err := context.Cause(ctx); errors.Is(err, ErrDuplicate) {
		return err
	}
	return nil
}

// waitIdle returns once no build runs (after Drain) or ctx ends.
func (w *Worker) waitIdle(ctx context.Context) {
	for {
		w.mu.Lock()
		n := len(w.builds)
		w.mu.Unlock()
		if n == 0 {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-w.idle:
		}
	}
}

func (w *Worker) runningIDs() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	ids := make([]string, 0, len(w.builds))
	for id := range w.builds {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func (w *Worker) signalHello() {
	select {
	case w.hello <- struct{}{}:
	default:
	}
}

// helloLoop sends Hello after every (re)connect until the master answers,
// so a restarted master learns which builds this worker still runs.
func (w *Worker) helloLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.hello:
		}
		w.sayHello(ctx)
	}
}

func (w *Worker) sayHello(ctx context.Context) {
	for {
		w.mu.Lock()
		draining := w.draining
		w.mu.Unlock()
		hello := protocol.Hello{
			V: protocol.Version, Worker: w.cfg.Name, KilnVersion: w.cfg.Version,
			Tags: w.tags, Slots: w.cfg.Slots, Running: w.runningIDs(), Instance: w.instance,
		}
		if draining {
			hello.Slots = 0
		}
		var reply protocol.HelloReply
		if err := w.request(ctx, protocol.HelloSubject(w.cfg.Name), hello, &reply); err != nil {
			return
		}
		if reply.Duplicate {
			w.log.Error("master refused hello: stopping", "err", reply.Error, "instance", w.instance)
			w.stop(fmt.Errorf("%w: %s", ErrDuplicate, reply.Error))
			return
		}
		if reply.OK {
			w.log.Info("master accepted hello", "running", hello.Running, "cancel", reply.Cancel)
			w.admit.Do(func() { close(w.admitted) })
			w.mu.Lock()
			changed := reply.HeartbeatInterval > 0 && reply.HeartbeatInterval != w.heartbeat
			if changed {
				w.heartbeat = reply.HeartbeatInterval
			}
			w.mu.Unlock()
			if changed {
				select {
				case w.heartbeatChanged <- struct{}{}:
				default:
				}
			}
			for _, id := range reply.Cancel {
				w.cancelBuild(id, errGivenAway)
			}
			return
		}
		w.log.Error("master refused hello; retrying", "err", reply.Error)
		select {
		case <-ctx.Done():
			return
		case <-time.After(refusedHelloWait):
		}
	}
}

// refusedHelloWait spaces out Hellos a master refused (e.g. a worker not yet
// in its config), so the worker joins once an operator fixes it.
const refusedHelloWait = 10 * time.Second

func (w *Worker) heartbeatLoop(ctx context.Context) {
	for {
		w.mu.Lock()
		interval := w.heartbeat
		w.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-w.heartbeatChanged:
			continue
		case <-time.After(interval):
		}
		w.mu.Lock()
		hb := protocol.Heartbeat{
			V: protocol.Version, Worker: w.cfg.Name, Free: w.cfg.Slots - len(w.builds),
			Draining: w.draining, Time: time.Now().UTC(), Instance: w.instance,
		}
		w.mu.Unlock()
		hb.Running = w.runningIDs()
		if err := w.nc.Publish(protocol.HeartbeatSubject(w.cfg.Name), protocol.Encode(hb)); err != nil {
			w.log.Warn("heartbeat", "err", err)
		}
	}
}
