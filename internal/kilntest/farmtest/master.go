package farmtest

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kiln-build/kiln/internal/kilntest"
	"github.com/kiln-build/kiln/master"
)

// Master is a running master.
type Master struct {
	Master *master.Master
	// URL is the HTTP base address, "http://127.0.0.1:PORT".
	URL string
	// NATSURL is what workers dial: the embedded server's, or the
	// external one given with ExternalNATS.
	NATSURL string
	// Dir is where Config and File write, and where the data dir is
	// unless DataDir says otherwise.
	Dir     string
	DataDir string

	t      testing.TB
	opts   master.Options
	cancel context.CancelFunc
	done   chan error
}

// MasterOption configures StartMaster.
type MasterOption func(*masterSetup)

type masterSetup struct {
	dir, config string
	files       map[string]string
	opts        master.Options
	tune        []func(*master.Options)
}

// Config is the farm's configuration as YAML text, written to
// Dir/farm.yaml; relative credentials paths in it resolve against Dir.
func Config(yaml string) MasterOption { return func(s *masterSetup) { s.config = yaml } }

// ConfigFile runs the master on a configuration file the test wrote.
func ConfigFile(path string) MasterOption {
	return func(s *masterSetup) { s.opts.ConfigPath = path }
}

// Dir sets the directory Config and File write to; default a fresh
// temporary one.
func Dir(dir string) MasterOption { return func(s *masterSetup) { s.dir = dir } }

// File writes a file beside the config, readable by its owner only: the
// credentials files a config names (w1.token, ops.token).
func File(name, content string) MasterOption {
	return func(s *masterSetup) {
		if s.files == nil {
			s.files = map[string]string{}
		}
		s.files[name] = content
	}
}

// DataDir keeps the master's state in dir; default Dir/data. A second
// master on the same data dir resumes the first one's state.
func DataDir(dir string) MasterOption { return func(s *masterSetup) { s.opts.DataDir = dir } }

// ExternalNATS has the master use the NATS server at url (credentials in
// it, see kilntest.NATSServer.UserURL) instead of embedding one.
func ExternalNATS(url string) MasterOption { return func(s *masterSetup) { s.opts.NATSURL = url } }

// NATSAddr is where the embedded NATS server listens; default a free
// loopback port.
func NATSAddr(addr string) MasterOption { return func(s *masterSetup) { s.opts.NATSAddr = addr } }

// Signer is the signing agent's socket, for farms that publish.
func Signer(socket string) MasterOption { return func(s *masterSetup) { s.opts.SignerSocket = socket } }

// MasterLogger replaces the default kilntest.Logger(t).
func MasterLogger(l *slog.Logger) MasterOption { return func(s *masterSetup) { s.opts.Logger = l } }

// MasterOptions edits the options master.New gets after every other
// option, for what the helpers here do not name.
func MasterOptions(f func(*master.Options)) MasterOption {
	return func(s *masterSetup) { s.tune = append(s.tune, f) }
}

// StartMaster runs a master until the test ends and returns once it leads
// and schedules. HTTP and the embedded NATS server listen on free loopback
// ports.
func StartMaster(t testing.TB, opts ...MasterOption) *Master {
	t.Helper()
	var s masterSetup
	for _, o := range opts {
		o(&s)
	}
	if s.dir == "" {
		s.dir = t.TempDir()
	}
	for name, content := range s.files {
		if err := os.WriteFile(filepath.Join(s.dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if s.config != "" {
		s.opts.ConfigPath = filepath.Join(s.dir, "farm.yaml")
		if err := os.WriteFile(s.opts.ConfigPath, []byte(s.config), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if s.opts.ConfigPath == "" {
		t.Fatal("farmtest.StartMaster: no Config or ConfigFile")
	}
	if s.opts.DataDir == "" {
		s.opts.DataDir = filepath.Join(s.dir, "data")
	}
	s.opts.HTTPAddr = "127.0.0.1:0"
	if s.opts.NATSAddr == "" {
		s.opts.NATSAddr = "127.0.0.1:0"
	}
	if s.opts.Logger == nil {
		s.opts.Logger = kilntest.Logger(t)
	}
	for _, f := range s.tune {
		f(&s.opts)
	}
	m := &Master{Dir: s.dir, DataDir: s.opts.DataDir, t: t, opts: s.opts}
	m.start()
	t.Cleanup(m.Stop)
	return m
}

func (m *Master) start() {
	m.t.Helper()
	mm, err := master.New(m.opts)
	if err != nil {
		m.t.Fatalf("start master: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m.Master, m.cancel, m.done = mm, cancel, make(chan error, 1)
	m.URL, m.NATSURL = "http://"+mm.HTTPAddr(), mm.NATSURL()
	go func() { m.done <- mm.Run(ctx) }()
	rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
	defer rcancel()
	if err := mm.Ready(rctx); err != nil {
		m.Stop()
		m.t.Fatalf("master not ready: %v", err)
	}
}

// Stop shuts the master down and waits for it; a failed shutdown fails the
// test. The test's cleanup calls it too; calling it again does nothing.
func (m *Master) Stop() {
	m.t.Helper()
	if m.cancel == nil {
		return
	}
	m.cancel()
	m.cancel = nil
	select {
	case err := <-m.done:
		if err != nil {
			m.t.Errorf("master run: %v", err)
		}
	case <-time.After(30 * time.Second):
		m.t.Errorf("master did not stop within 30s of its context ending")
	}
}

// Restart stops the master (unless Stop already did) and starts a new one
// on the same config and data dir. The embedded NATS server comes back on
// the same port, so workers reconnect by themselves; the HTTP port
// changes, and URL with it.
func (m *Master) Restart() {
	m.t.Helper()
	m.Stop()
	if m.opts.NATSURL == "" {
		m.opts.NATSAddr = strings.TrimPrefix(m.NATSURL, "nats://")
	}
	m.start()
}
