package master_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kiln-build/kiln/internal/kilntest"
	"github.com/kiln-build/kiln/internal/kilntest/farmtest"
	"github.com/kiln-build/kiln/master"
	"github.com/kiln-build/kiln/master/api"
	"github.com/kiln-build/kiln/master/state"
)

// farmYAML is a chain liba → libb → app over a Debian and a CentOS target.
// Workers w1, w2, w3 are configured; their builds are never checked out
// (the tests using it run fake workers), so the repositories need not
// exist.
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
    git: /nonexistent/src/liba
    rebuild: transitive
  - name: libb
    git: /nonexistent/src/libb
    depends: [liba]
  - name: app
    git: /nonexistent/src/app
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

type farmOpts struct {
	heartbeatTimeout string
}

// farmConfig is farmYAML with o's settings.
func farmConfig(o farmOpts) string {
	if o.heartbeatTimeout == "" {
		o.heartbeatTimeout = "30s"
	}
	return fmt.Sprintf(farmYAML, o.heartbeatTimeout)
}

// newFarm starts a master on farmYAML.
func newFarm(t *testing.T, o farmOpts, opts ...farmtest.MasterOption) *farm {
	t.Helper()
	return startFarm(t, farmConfig(o), opts...)
}

// opsToken is the API token of user ops, whom the farm configs list.
const opsToken = "ops-secret-token"

// farm is a master under test (farmtest's) with the helpers its stories
// share: forcing builds and waiting for them, the API as user ops.
type farm struct {
	*farmtest.Master
	t *testing.T
}

// startFarm runs a master on the farm config cfg. Beside it are the
// credentials files the configs here name: ops.token, user ops's, and
// w1.token to w3.token, each worker's ("secret-" and its name, what
// runWorker and startFakeWorker send).
func startFarm(t *testing.T, cfg string, opts ...farmtest.MasterOption) *farm {
	t.Helper()
	files := []farmtest.MasterOption{farmtest.Config(cfg), farmtest.File("ops.token", opsToken+"\n")}
	for _, w := range []string{"w1", "w2", "w3"} {
		files = append(files, farmtest.File(w+".token", "secret-"+w+"\n"))
	}
	return &farm{Master: farmtest.StartMaster(t, append(files, opts...)...), t: t}
}

// m is the running master; Restart replaces it.
func (f *farm) m() *master.Master { return f.Master.Master }

// api is the running master's API, in process.
func (f *farm) api() api.Backend { return f.Master.Master.API() }

// configPath is where farmtest wrote the config.
func (f *farm) configPath() string { return filepath.Join(f.Dir, "farm.yaml") }

// writeConfig replaces the config; the master applies it on its next look
// or Reload.
func (f *farm) writeConfig(cfg string) {
	f.t.Helper()
	if err := os.WriteFile(f.configPath(), []byte(cfg), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

// runWorker runs the real worker package in-process as one of the farm's
// workers until the test ends (or Stop).
func (f *farm) runWorker(name string, slots int, tags ...string) *farmtest.Worker {
	f.t.Helper()
	return farmtest.StartWorker(f.t, f.NATSURL, name, "secret-"+name, farmtest.Slots(slots), farmtest.Tags(tags...))
}

func (f *farm) waitConnected(names ...string) {
	f.t.Helper()
	kilntest.WaitFor(f.t, 10*time.Second, "workers "+strings.Join(names, ", ")+" to connect", func() bool {
		up := map[string]bool{}
		for _, w := range f.api().Workers() {
			up[w.Name] = w.Connected
		}
		for _, n := range names {
			if !up[n] {
				return false
			}
		}
		return true
	})
}

func (f *farm) url(path string) string { return f.URL + path }

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

// get does an anonymous GET, as browsers do, and returns the status and
// body.
func (f *farm) get(path string) (int, string) {
	f.t.Helper()
	req, _ := http.NewRequest("GET", f.url(path), nil)
	return send(f.t, req)
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
	b, err := f.api().Build(id)
	if err != nil {
		f.t.Fatal(err)
	}
	return b
}

// waitFinished waits until every listed build is terminal; on a timeout it
// logs where each one is.
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

func itoa(id int64) string { return strconv.FormatInt(id, 10) }
