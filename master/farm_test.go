package master_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kiln-build/kiln/master"
	"github.com/kiln-build/kiln/master/api"
	"github.com/kiln-build/kiln/master/state"
)

// farmYAML is a chain liba → libb → app over a Debian and a CentOS target.
// Workers w1, w2, w3 are configured; tokens live in files next to it.
const farmYAML = `
master:
  heartbeat_timeout: %s
targets:
  - distro: debian
    versions: [bookworm]
    arches: [amd64]
    kind: shell
    format: apt
    tags: [debian]
    steps:
      - {name: build, type: shell, script: "echo building on debian"}
  - distro: centos
    versions: ["9"]
    arches: [x86_64]
    kind: shell
    format: yum
    tags: [centos]
    steps:
      - {name: build, type: shell, script: "echo building on centos"}
components:
  - name: liba
    git: %s
    rebuild: transitive
  - name: libb
    git: %s
    depends: [liba]
  - name: app
    git: %s
    depends: [libb]
workers:
  - {name: w1, credentials: w1.token, slots: 2}
  - {name: w2, credentials: w2.token, slots: 2}
  - {name: w3, credentials: w3.token, slots: 2}
users:
  - {name: ops, token: ops.token}
repos:
  channels:
    - {name: dev, key: demo}
`

// farm is a master under test with its config directory and HTTP client.
type farm struct {
	t       *testing.T
	dir     string
	dataDir string
	config  string
	m       *master.Master
	// natsAddr keeps the NATS port across restarts, so workers reconnect.
	natsAddr string
	cancel   context.CancelFunc
	done     chan error
}

type farmOpts struct {
	heartbeatTimeout string
	gitDirs          [3]string
}

func writeFarmConfig(t *testing.T, dir string, o farmOpts) string {
	t.Helper()
	if o.heartbeatTimeout == "" {
		o.heartbeatTimeout = "30s"
	}
	for i := range o.gitDirs {
		if o.gitDirs[i] == "" {
			o.gitDirs[i] = filepath.Join(dir, "src", []string{"liba", "libb", "app"}[i])
		}
	}
	return writeFarm(t, dir, fmt.Sprintf(farmYAML, o.heartbeatTimeout, o.gitDirs[0], o.gitDirs[1], o.gitDirs[2]), "w1", "w2", "w3")
}

// writeFarm lays out a farm's config directory: cfg as farm.yaml, whose
// path it returns, with the credentials files of the named workers and of
// user ops beside it.
func writeFarm(t *testing.T, dir, cfg string, workers ...string) string {
	t.Helper()
	for _, w := range workers {
		token(t, dir, w)
	}
	writeOpsToken(t, dir)
	p := filepath.Join(dir, "farm.yaml")
	writeFile(t, p, cfg)
	return p
}

// token writes a worker's credentials file (the token runWorker sends) and
// returns its path.
func token(t *testing.T, dir, worker string) string {
	t.Helper()
	p := filepath.Join(dir, worker+".token")
	if err := os.WriteFile(p, []byte("secret-"+worker+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func writeFile(t *testing.T, p, content string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func newFarm(t *testing.T, o farmOpts) *farm {
	t.Helper()
	dir := t.TempDir()
	return startFarm(t, dir, writeFarmConfig(t, dir, o))
}

// opsToken is the API token of user ops, whom the farm configs list.
const opsToken = "ops-secret-token"

// writeOpsToken puts ops's token where the farm configs' users say.
func writeOpsToken(t *testing.T, dir string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "ops.token"), []byte(opsToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// startFarm runs a master on config with its data under dir.
func startFarm(t *testing.T, dir, config string) *farm {
	t.Helper()
	f := &farm{t: t, dir: dir, dataDir: filepath.Join(dir, "data"), config: config}
	f.start()
	return f
}

func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("KILN_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// start runs the master on the farm's data dir (again, after stop).
func (f *farm) start() {
	f.t.Helper()
	if f.natsAddr == "" {
		f.natsAddr = "127.0.0.1:0"
	}
	m, err := master.New(master.Options{ConfigPath: f.config, DataDir: f.dataDir, HTTPAddr: "127.0.0.1:0", NATSAddr: f.natsAddr, Logger: testLogger(f.t)})
	if err != nil {
		f.t.Fatalf("start master: %v", err)
	}
	f.natsAddr = strings.TrimPrefix(m.NATSURL(), "nats://")
	ctx, cancel := context.WithCancel(context.Background())
	f.m, f.cancel, f.done = m, cancel, make(chan error, 1)
	go func() { f.done <- m.Run(ctx) }()
	rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
	defer rcancel()
	if err := m.Ready(rctx); err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(f.stop)
}

// runMaster runs m under the returned context until stop is called and
// returns once m is ready, for tests that need a master outside a farm.
func runMaster(tb testing.TB, m *master.Master) (ctx context.Context, stop func()) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	stop = func() { cancel(); <-done }
	if err := m.Ready(ctx); err != nil {
		stop()
		tb.Fatal(err)
	}
	return ctx, stop
}

// stop shuts the master down and waits; safe to call twice.
func (f *farm) stop() {
	if f.cancel == nil {
		return
	}
	f.cancel()
	if err := <-f.done; err != nil {
		f.t.Errorf("master run: %v", err)
	}
	f.cancel = nil
}

func (f *farm) url(path string) string { return "http://" + f.m.HTTPAddr() + path }

// call does an API request as user ops and decodes a JSON answer into out
// (if non-nil); it returns the status code.
func (f *farm) call(method, path string, body any, out any) int {
	f.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = strings.NewReader(string(b))
	}
	req, _ := http.NewRequest(method, f.url(path), rd)
	req.Header.Set("Authorization", "Bearer "+opsToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			f.t.Fatalf("%s %s: decode %q: %v", method, path, data, err)
		}
	}
	return resp.StatusCode
}

// send does req anonymously, as hooks and browsers do, and returns the
// status and body; call is the way in as user ops.
func send(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (f *farm) force(component string) *api.ForceResult {
	f.t.Helper()
	var res api.ForceResult
	if code := f.call("POST", "/api/v1/force", api.ForceRequest{Component: component}, &res); code != http.StatusCreated {
		f.t.Fatalf("force %s: HTTP %d", component, code)
	}
	return &res
}

func (f *farm) build(id int64) *api.Build {
	f.t.Helper()
	b, err := f.m.API().Build(id)
	if err != nil {
		f.t.Fatal(err)
	}
	return b
}

// waitFinished waits until every listed build is terminal.
func (f *farm) waitFinished(timeout time.Duration, ids ...int64) []*api.Build {
	f.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var out []*api.Build
		done := true
		for _, id := range ids {
			b := f.build(id)
			out = append(out, b)
			done = done && state.Terminal(b.Status)
		}
		if done {
			return out
		}
		if time.Now().After(deadline) {
			for _, b := range out {
				f.t.Logf("build %d %s: %s %s", b.ID, b.Builder, b.Status, b.Summary)
			}
			f.t.Fatalf("builds not finished after %s", timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitFor polls cond (tests only: the master itself never polls).
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func itoa(id int64) string { return strconv.FormatInt(id, 10) }

func quietLogger() *slog.Logger {
	if os.Getenv("KILN_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func apiForce(component string) api.ForceRequest { return api.ForceRequest{Component: component} }
