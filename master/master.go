// Package master is Kiln's control plane: it wires the embedded NATS server
// (or an external cluster), the raft-backed state, the scheduler, the
// handlers for worker messages and the HTTP API together.
package master

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kiln-build/kiln/builders"
	"github.com/kiln-build/kiln/master/metrics"
	"github.com/kiln-build/kiln/master/natsd"
	"github.com/kiln-build/kiln/master/sched"
	"github.com/kiln-build/kiln/master/state"
	"github.com/kiln-build/kiln/protocol"
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
	// changes; default DefaultConfigWatch.
	ConfigWatch time.Duration
}

// MasterUser is the NATS user the master itself logs in as.
const MasterUser = "kiln-master"

// Master is a running control plane.
type Master struct {
	o      Options
	log    *slog.Logger
	cfg    *builders.Config
	matrix atomic.Pointer[builders.Matrix]

	nats    *natsd.Server // nil with an external NATS cluster
	natsURL string
	nc      *nats.Conn
	js      jetstream.JetStream
	objects jetstream.ObjectStore

	node  *state.Node
	sched *sched.Scheduler
	repos *repos // nil without a signing agent

	httpLn  net.Listener
	httpSrv *http.Server
	mux     *http.ServeMux
	ui      ui
	intake  *intake
	conf    *configState
	// natsPassword is the master's own NATS password, kept for the user
	// list a config reload gives the embedded server.
	natsPassword string

	// handlers counts worker-message handlers in flight; closing stops new
	// ones, since NATS may still deliver while the subscription drains.
	handlersMu sync.Mutex
	closing    bool
	handlers   sync.WaitGroup
}

// New sets everything up: on return the NATS server accepts workers and the
// HTTP listener is bound, but nothing is served until Run.
func New(o Options) (m *Master, err error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	cfg, matrix, src, err := openConfig(&o)
	if err != nil {
		return nil, err
	}
	if o.DataDir == "" {
		o.DataDir = cfg.Master.DataDir
	}
	if o.DataDir == "" {
		return nil, errors.New("no data dir: pass --data or set master.data_dir")
	}
	o.HTTPAddr = firstOf(o.HTTPAddr, cfg.Master.HTTP, builders.DefaultHTTP)
	o.NATSAddr = firstOf(o.NATSAddr, cfg.Master.NATS, builders.DefaultNATS)
	o.NATSURL = firstOf(o.NATSURL, cfg.Master.NATSURL)
	m = &Master{o: o, log: o.Logger, cfg: cfg, conf: &configState{src: src}}
	m.matrix.Store(matrix)
	// "return nil, err" clears the named result before deferred calls run.
	built := m
	defer func() {
		if err != nil {
			built.close()
		}
	}()
	if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	if err := m.startNATS(); err != nil {
		return nil, err
	}
	if err := m.setupJetStream(); err != nil {
		return nil, err
	}
	m.ui.metrics = metrics.New()
	m.node, err = state.Open(state.NodeOptions{Dir: filepath.Join(o.DataDir, "raft"), Addr: o.RaftAddr, Logger: o.Logger, Applied: m.applied})
	if err != nil {
		return nil, fmt.Errorf("open state: %w", err)
	}
	startCtx, cancelStart := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancelStart()
	if err := m.openRepos(startCtx); err != nil {
		return nil, err
	}
	m.sched = sched.New(sched.Options{
		Node: m.node, Conn: m.nc, Matrix: m.matrix.Load,
		HeartbeatTimeout: durationOr(cfg.Master.HeartbeatTimeout.D(), builders.DefaultHeartbeatTimeout),
		MaxAttempts:      intOr(cfg.Master.MaxAttempts, builders.DefaultMaxAttempts),
		Logger:           o.Logger,
		Repo:             m.repoForJob,
	})
	m.httpLn, err = net.Listen("tcp", o.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("listen for HTTP on %s: %w", o.HTTPAddr, err)
	}
	m.mux = http.NewServeMux()
	if err := m.mountHTTP(); err != nil {
		return nil, err
	}
	m.mountRepos()
	if err := m.setupIntake(cfg, matrix); err != nil {
		return nil, err
	}
	m.httpSrv = &http.Server{Handler: m.mux, ReadHeaderTimeout: 10 * time.Second}
	return m, nil
}

func firstOf(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
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

// Mux is the master's one HTTP router, serving /api/v1. Web pages, webhooks
// (/hooks/), repositories and /metrics register on it before Run.
func (m *Master) Mux() *http.ServeMux { return m.mux }

// Node exposes the raft node (tests, benchmarks).
func (m *Master) Node() *state.Node { return m.node }

// startNATS runs the embedded server with a user per configured worker, or
// dials the external cluster.
func (m *Master) startNATS() error {
	var opts []nats.Option
	opts = append(opts, nats.Name("kiln-master"), nats.MaxReconnects(-1))
	if m.o.NATSURL != "" {
		m.natsURL = m.o.NATSURL
	} else {
		pw, err := masterSecret(m.o.DataDir)
		if err != nil {
			return err
		}
		m.natsPassword = pw
		users, err := m.natsUsers(m.cfg, m.o.ConfigPath)
		if err != nil {
			return err
		}
		m.nats, err = natsd.Start(natsd.Options{Addr: m.o.NATSAddr, StoreDir: filepath.Join(m.o.DataDir, "nats"), Users: users, Logger: m.log})
		if err != nil {
			return fmt.Errorf("start embedded nats: %w", err)
		}
		m.natsURL = m.nats.ClientURL()
		opts = append(opts, nats.UserInfo(MasterUser, pw))
	}
	nc, err := nats.Connect(m.natsURL, opts...)
	if err != nil {
		return fmt.Errorf("connect to nats at %s: %w", m.natsURL, err)
	}
	m.nc = nc
	return nil
}

// masterSecret makes a fresh password for the master's NATS user each start
// and keeps it in the data dir, readable by the master's user only, for
// operators' tools (nats CLI) to inspect the server.
func masterSecret(dir string) (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate master nats password: %w", err)
	}
	pw := hex.EncodeToString(b)
	if err := os.WriteFile(filepath.Join(dir, "nats-master.secret"), []byte(pw+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write master nats password: %w", err)
	}
	return pw, nil
}

// ReadSecret resolves a credentials reference: "env:VAR" reads an
// environment variable, anything else is a file path (relative paths are
// relative to the config file's directory). Surrounding whitespace is
// dropped.
func ReadSecret(ref, configPath string) (string, error) {
	if ref == "" {
		return "", errors.New("no credentials reference")
	}
	if name, ok := strings.CutPrefix(ref, "env:"); ok {
		v := strings.TrimSpace(os.Getenv(name))
		if v == "" {
			return "", fmt.Errorf("environment variable %s is empty or unset", name)
		}
		return v, nil
	}
	p := ref
	if !filepath.IsAbs(p) && configPath != "" {
		base := configPath
		if st, err := os.Stat(configPath); err == nil && !st.IsDir() {
			base = filepath.Dir(configPath)
		}
		p = filepath.Join(base, p)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return "", fmt.Errorf("read secret: %w", err)
	}
	v := strings.TrimSpace(string(b))
	if v == "" {
		return "", fmt.Errorf("secret file %s is empty", p)
	}
	return v, nil
}

func (m *Master) setupJetStream() error {
	js, err := jetstream.New(m.nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	m.js = js
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: protocol.LogStream, Subjects: []string{protocol.AllLogSubjects}, Storage: jetstream.FileStorage,
	}); err != nil {
		return fmt.Errorf("create log stream %s: %w", protocol.LogStream, err)
	}
	m.objects, err = js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket: protocol.ArtifactBucket, Storage: jetstream.FileStorage, Description: "Kiln build artifacts, named by sha256",
	})
	if err != nil {
		return fmt.Errorf("create artifact store %s: %w", protocol.ArtifactBucket, err)
	}
	return nil
}

// Run serves until ctx ends, then shuts everything down in order.
func (m *Master) Run(parent context.Context) error {
	defer m.close()
	// Every goroutine below ends with ctx, whichever way Run returns.
	ctx, stop := context.WithCancel(parent)
	defer stop()
	sub, err := m.nc.Subscribe(protocol.AllWorkerSubjects, func(msg *nats.Msg) {
		m.handlersMu.Lock()
		defer m.handlersMu.Unlock()
		if m.closing {
			return
		}
		m.handlers.Add(1)
		go func() {
			defer m.handlers.Done()
			m.handleWorkerMsg(ctx, msg)
		}()
	})
	if err != nil {
		return fmt.Errorf("subscribe to worker subjects: %w", err)
	}
	sub.SetPendingLimits(-1, -1)

	var wg sync.WaitGroup
	httpErr := make(chan error, 1)
	wg.Add(3)
	go func() {
		defer wg.Done()
		if err := m.httpSrv.Serve(m.httpLn); !errors.Is(err, http.ErrServerClosed) {
			httpErr <- fmt.Errorf("serve HTTP: %w", err)
		}
	}()
	go func() {
		defer wg.Done()
		m.watchConfig(ctx)
	}()
	go func() {
		defer wg.Done()
		m.lead(ctx)
	}()
	m.log.Info("master running", "http", m.HTTPAddr(), "nats", redact(m.natsURL), "raft", m.node.Addr())

	select {
	case <-ctx.Done():
		err = nil
	case err = <-httpErr:
	}
	stop()
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = m.httpSrv.Shutdown(shutCtx)
	_ = sub.Unsubscribe()
	m.handlersMu.Lock()
	m.closing = true
	m.handlersMu.Unlock()
	m.handlers.Wait()
	wg.Wait()
	return err
}

// redact drops credentials from NATS URLs for logging.
func redact(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		if u, err := url.Parse(p); err == nil && u.User != nil {
			u.User = nil
			parts[i] = u.String()
		}
	}
	return strings.Join(parts, ",")
}

// lead runs the scheduler while this node is the raft leader.
func (m *Master) lead(ctx context.Context) {
	var (
		cancel context.CancelFunc
		done   chan struct{}
	)
	stop := func() {
		if cancel != nil {
			cancel()
			<-done
			cancel = nil
		}
	}
	start := func() {
		if cancel != nil {
			return
		}
		var sctx context.Context
		sctx, cancel = context.WithCancel(ctx)
		done = make(chan struct{})
		go func() {
			defer close(done)
			m.runLeader(sctx)
		}()
		m.log.Info("leading: scheduler started")
	}
	if m.node.IsLeader() {
		start()
	}
	for {
		select {
		case <-ctx.Done():
			stop()
			return
		case isLeader := <-m.node.LeaderCh():
			if isLeader {
				start()
			} else {
				stop()
				m.log.Warn("lost leadership: scheduler stopped")
			}
		}
	}
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

func (m *Master) close() {
	m.repos.close()
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
}
