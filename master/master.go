// Package master is Kiln's control plane. This package only wires: it
// starts the embedded NATS server (or dials an external cluster), the raft
// state, and the parts that own each concern, and runs them for as long as
// the master runs:
//
//	confsrc   where the config comes from, reloads and their status, secrets
//	intake    changes in: webhooks, pollers, forced and repeated builds
//	sched     which ready request runs on which worker slot; worker liveness
//	dispatch  the worker conversation: hello, heartbeat, events, results, jobs
//	publish   a good build's packages into signed repositories; /repos/
//	view      what the API and the pages show, and the actions users take
//	api, web  the REST API and the status pages over view
//	state     the raft FSM: the farm's authoritative record
//
// leader.go holds the one list of services that run only on the raft
// leader; docs/architecture.md draws the whole picture.
package master

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kiln-build/kiln/builders"
	"github.com/kiln-build/kiln/master/api"
	"github.com/kiln-build/kiln/master/confsrc"
	"github.com/kiln-build/kiln/master/dispatch"
	"github.com/kiln-build/kiln/master/intake"
	"github.com/kiln-build/kiln/master/metrics"
	"github.com/kiln-build/kiln/master/natsd"
	"github.com/kiln-build/kiln/master/publish"
	"github.com/kiln-build/kiln/master/sched"
	"github.com/kiln-build/kiln/master/state"
	"github.com/kiln-build/kiln/master/view"
)

// Options configure a master. Empty addresses fall back to the config file's
// master section, then to the defaults (HTTP :8010, NATS :4222).
type Options struct {
	ConfigPath string
	DataDir    string
	HTTPAddr   string
	NATSAddr   string
	NATSURL    string // external NATS cluster instead of the embedded server
	RaftAddr   string // raft transport; default 127.0.0.1:0 (one-node cluster)
	Logger     *slog.Logger
	// SignerSocket is the signing agent's Unix socket; default
	// DATA/signer.sock when it exists. Without one nothing is published.
	SignerSocket string
	// ConfigGit, when its Git is set, loads the config from that repository
	// (ConfigPath is then an optional bootstrap file).
	ConfigGit builders.ConfigSource
	// ConfigWatch is how often a local config's files are looked at for
	// changes; default confsrc.DefaultWatch.
	ConfigWatch time.Duration
}

// ErrConfigRefused wraps every reason a new config is not applied; the farm
// keeps running the last good one.
var ErrConfigRefused = confsrc.ErrConfigRefused

// Master is a running control plane.
type Master struct {
	o      Options
	log    *slog.Logger
	matrix atomic.Pointer[builders.Matrix]

	nats    *natsd.Server // nil with an external NATS cluster
	natsURL string
	nc      *nats.Conn
	js      jetstream.JetStream
	objects jetstream.ObjectStore
	// natsPassword is the master's own NATS password, kept for the user
	// list a config reload gives the embedded server.
	natsPassword string

	node     *state.Node
	conf     *confsrc.Source
	sched    *sched.Scheduler
	dispatch *dispatch.Dispatcher
	intake   *intake.Intake
	publish  *publish.Publisher
	view     *view.View
	metrics  *metrics.Metrics
	web      webAccess

	httpLn  net.Listener
	httpSrv *http.Server
	mux     *http.ServeMux

	closeOnce sync.Once
}

// New sets everything up: on return the NATS server accepts workers and the
// HTTP listener is bound, but nothing is served until Run. Close undoes
// what New started; Run calls it on return.
func New(o Options) (m *Master, err error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	settings := confsrc.Settings{ConfigPath: o.ConfigPath, ConfigGit: o.ConfigGit, DataDir: o.DataDir,
		HTTPAddr: o.HTTPAddr, NATSAddr: o.NATSAddr, NATSURL: o.NATSURL, Logger: o.Logger}
	conf, cfg, matrix, err := confsrc.Open(&settings)
	if err != nil {
		return nil, err
	}
	o.ConfigPath, o.DataDir = settings.ConfigPath, cmp.Or(settings.DataDir, cfg.Master.DataDir)
	if o.DataDir == "" {
		return nil, errors.New("no data dir: pass --data or set master.data_dir")
	}
	o.HTTPAddr = cmp.Or(settings.HTTPAddr, cfg.Master.HTTP, builders.DefaultHTTP)
	o.NATSAddr = cmp.Or(settings.NATSAddr, cfg.Master.NATS, builders.DefaultNATS)
	o.NATSURL = cmp.Or(settings.NATSURL, cfg.Master.NATSURL)
	m = &Master{o: o, log: o.Logger, conf: conf, metrics: metrics.New()}
	m.matrix.Store(matrix)
	// "return nil, err" clears the named result before deferred calls run.
	built := m
	defer func() {
		if err != nil {
			built.Close()
		}
	}()
	if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	if err := m.startNATS(cfg); err != nil {
		return nil, err
	}
	m.node, err = state.Open(state.NodeOptions{Dir: filepath.Join(o.DataDir, "raft"), Addr: o.RaftAddr, Logger: o.Logger})
	if err != nil {
		return nil, fmt.Errorf("open state: %w", err)
	}
	m.httpLn, err = net.Listen("tcp", o.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("listen for HTTP on %s: %w", o.HTTPAddr, err)
	}
	startCtx, cancelStart := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancelStart()
	m.publish, err = publish.Open(startCtx, publish.Options{DataDir: o.DataDir, SignerSocket: o.SignerSocket, Node: m.node,
		Matrix: m.matrix.Load, Objects: m.objects, HTTPAddr: m.HTTPAddr(), Metrics: m.metrics, Logger: o.Logger})
	if err != nil {
		return nil, err
	}
	maxAttempts := intOr(cfg.Master.MaxAttempts, builders.DefaultMaxAttempts)
	m.sched = sched.New(sched.Options{
		State: m.node.FSM, Applier: m.node, Sender: dispatch.NewNATSSender(m.nc), Matrix: m.matrix.Load,
		HeartbeatTimeout: durationOr(cfg.Master.HeartbeatTimeout.D(), builders.DefaultHeartbeatTimeout),
		MaxAttempts:      maxAttempts,
		Logger:           o.Logger,
		JobRepos:         m.publish.JobRepo,
	})
	m.dispatch = dispatch.New(dispatch.Options{Conn: m.nc, Node: m.node, Scheduler: m.sched, Finisher: m.publish, Objects: m.objects,
		Workers: func() []builders.Worker { return m.matrix.Load().Config.Workers }, MaxAttempts: maxAttempts, Logger: o.Logger})
	m.intake, err = intake.New(intake.Options{Node: m.node, Matrix: m.matrix.Load, Wake: m.sched.Wake, ConfigRepo: conf.Git(),
		ConfigChange: conf.Change, ConfigPath: o.ConfigPath, Logger: o.Logger})
	if err != nil {
		return nil, err
	}
	conf.Start(m.applyConfig, m.intake.ConfigFetch, o.ConfigWatch)
	m.view = view.New(view.Options{Node: m.node, Matrix: m.matrix.Load, Scheduler: m.sched, Intake: m.intake, Publisher: m.publish,
		Cancel: m.dispatch.Cancel, ConfigStatus: conf.Status, JetStream: m.js, Objects: m.objects, Logger: o.Logger})
	m.mux = http.NewServeMux()
	if err := m.mountHTTP(cfg); err != nil {
		return nil, err
	}
	m.httpSrv = &http.Server{Handler: m.mux, ReadHeaderTimeout: 10 * time.Second}
	return m, nil
}

func durationOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

func intOr(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

// HTTPAddr is the address the API listens on.
func (m *Master) HTTPAddr() string { return m.httpLn.Addr().String() }

// NATSURL is the URL workers dial.
func (m *Master) NATSURL() string { return m.natsURL }

// Mux is the master's one HTTP router. Tests and embedders may add routes
// to it, before or while it serves.
func (m *Master) Mux() *http.ServeMux { return m.mux }

// Node exposes the raft node (tests, benchmarks).
func (m *Master) Node() *state.Node { return m.node }

// Reload applies the config again if it changed: a local config is read
// from disk, a config repository is fetched. A refused config leaves the
// farm on the last good one and comes back wrapped in ErrConfigRefused.
func (m *Master) Reload(ctx context.Context) error { return m.conf.Reload(ctx) }

// Run serves until ctx ends, then shuts everything down in order.
func (m *Master) Run(parent context.Context) error {
	defer m.Close()
	// Every goroutine below ends with ctx, whichever way Run returns.
	ctx, stop := context.WithCancel(parent)
	defer stop()
	var wg sync.WaitGroup
	httpErr := make(chan error, 1)
	dispatchErr := make(chan error, 1)
	wg.Go(func() {
		if err := m.dispatch.Run(ctx); err != nil {
			dispatchErr <- err
		}
	})
	wg.Go(func() {
		if err := m.httpSrv.Serve(m.httpLn); !errors.Is(err, http.ErrServerClosed) {
			httpErr <- fmt.Errorf("serve HTTP: %w", err)
		}
	})
	wg.Go(func() {
		// Every master watches the config, leader or not: each holds its
		// own matrix.
		if !m.intake.RunConfigPoller(ctx) {
			m.conf.Watch(ctx)
		}
	})
	wg.Go(func() { m.countEvents(ctx) })
	wg.Go(func() { m.lead(ctx) })
	m.log.Info("master running", "http", m.HTTPAddr(), "nats", redact(m.natsURL), "raft", m.node.Addr())

	var err error
	select {
	case <-ctx.Done():
	case err = <-httpErr:
	case err = <-dispatchErr:
	}
	stop()
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = m.httpSrv.Shutdown(shutCtx)
	wg.Wait()
	return err
}

// Ready waits until this master leads and schedules (tests, ctl scripts).
func (m *Master) Ready(ctx context.Context) error {
	for !m.node.IsLeader() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for raft leadership: %w", ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}

// Close stops what New started. Run calls it; call it yourself only for a
// master that never ran.
func (m *Master) Close() {
	m.closeOnce.Do(func() {
		if m.publish != nil {
			m.publish.Close()
		}
		if m.nc != nil {
			m.nc.Close()
		}
		if m.node != nil {
			if err := m.node.Close(); err != nil {
				m.log.Warn("raft shutdown", "err", err)
			}
		}
		if m.nats != nil {
			m.nats.Shutdown()
		}
		if m.httpLn != nil {
			m.httpLn.Close()
		}
	})
}

// API is the REST API's backend in process: what /api/v1 answers, in the
// API's own types (tests, benchmarks, embedders).
func (m *Master) API() api.Backend { return m.view }

// Intake receives changes; webhooks and pollers feed it, and tests may.
func (m *Master) Intake() *intake.Intake { return m.intake }
