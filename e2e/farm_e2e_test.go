//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kiln-build/kiln/internal/kilntest"
)

// farmConfig is the whole farm: the chain on debian/bookworm/amd64 with
// pbuilder, one worker, the dev channel signed by key e2e. The pbuilder
// step names the mirror so the base comes from the one this machine uses.
const farmConfig = `
targets:
  - {distro: debian, versions: [bookworm], arches: [amd64], kind: pbuilder}
templates:
  deb:
    - {type: checkout}
    - {type: source}
    - {type: pbuilder, with: {mirror: "%[1]s"}}
    - {type: lintian}
    - {type: upload}
components:
  - {name: libgreet, git: %[2]s, steps: [{use: deb}]}
  - {name: greeter, git: %[3]s, depends: [libgreet], steps: [{use: deb}]}
workers:
  - {name: e2e, credentials: env:KILN_WORKER_SECRET}
users:
  - {name: ops, token: env:KILN_E2E_OPS_TOKEN}
repos:
  channels:
    - {name: dev, key: e2e}
`

// opsToken is the API token of the farm's one user, who may force builds.
const opsToken = "e2e-ops-token"

// TestFarmPbuilderChain runs the chain through the real processes: the
// signing agent, the master (scheduler, artifact store, publisher) and a
// worker, all from the kiln binary; a force of libgreet rebuilds greeter
// after it, against the dev channel the master published libgreet into.
func TestFarmPbuilderChain(t *testing.T) {
	needTools(t, "pbuilder", "debootstrap", "dpkg-source", "lintian")
	dir := t.TempDir()
	kiln := kilnBinary(t)
	keys := filepath.Join(dir, "keys")
	if err := os.Mkdir(keys, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(kiln, "signer", "genkey", "--name", "e2e", "--type", "rsa4096", "--out", keys, "--no-passphrase").CombinedOutput(); err != nil {
		t.Fatalf("genkey: %v\n%s", err, out)
	}
	pubKey, err := os.ReadFile(filepath.Join(keys, "e2e.pub.asc"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "farm.yaml")
	content := fmt.Sprintf(farmConfig, debianMirror(t, "bookworm"), gitFixture(t, dir, "libgreet"), gitFixture(t, dir, "greeter"))
	if err := os.WriteFile(cfg, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	token := filepath.Join(dir, "worker.token")
	if err := os.WriteFile(token, []byte("e2e-worker-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	httpAddr, natsAddr := freeAddr(t), freeAddr(t)
	data, socket := filepath.Join(dir, "data"), filepath.Join(dir, "signer.sock")
	procs := &processes{t: t, dir: dir}
	procs.start("signer", nil, kiln, "signer", "--key", "e2e="+filepath.Join(keys, "e2e.sec.asc"), "--socket", socket)
	waitUntil(t, procs, 30*time.Second, "the signer's socket", func() bool { _, err := os.Stat(socket); return err == nil })
	procs.start("master", []string{"KILN_WORKER_SECRET=e2e-worker-secret", "KILN_E2E_OPS_TOKEN=" + opsToken}, kiln, "master", "--config", cfg, "--data", data,
		"--http", httpAddr, "--nats", natsAddr, "--signer", socket)
	procs.start("worker", nil, kiln, "worker", "--master", "nats://"+natsAddr, "--name", "e2e", "--credentials", token,
		"--workdir", filepath.Join(dir, "work"), "--cache", cacheDir())
	base := "http://" + httpAddr
	waitUntil(t, procs, time.Minute, "the worker to connect", func() bool {
		var ws []struct {
			Name      string `json:"name"`
			Connected bool   `json:"connected"`
		}
		return getJSON(base+"/api/v1/workers", &ws) == nil && len(ws) == 1 && ws[0].Connected
	})

	start := time.Now()
	req, err := http.NewRequest(http.MethodPost, base+"/api/v1/force", strings.NewReader(`{"component": "libgreet"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+opsToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var forced struct {
		Buildset int64 `json:"buildset"`
	}
	err = json.NewDecoder(resp.Body).Decode(&forced)
	resp.Body.Close()
	if err != nil || resp.StatusCode/100 != 2 {
		t.Fatalf("force libgreet: HTTP %d: %v", resp.StatusCode, err)
	}
	type build struct {
		ID        int64     `json:"id"`
		Buildset  int64     `json:"buildset"`
		Component string    `json:"component"`
		Status    string    `json:"status"`
		Summary   string    `json:"summary"`
		Started   time.Time `json:"started"`
		Ended     time.Time `json:"ended"`
	}
	done := map[string]build{}
	waitUntil(t, procs, 20*time.Minute, "libgreet and greeter to finish", func() bool {
		var list struct {
			Builds []build `json:"builds"`
		}
		if getJSON(fmt.Sprintf("%s/api/v1/builds?buildset=%d", base, forced.Buildset), &list) != nil {
			return false
		}
		for _, b := range list.Builds {
			if b.Buildset == forced.Buildset && !b.Ended.IsZero() {
				done[b.Component] = b
			}
		}
		return len(done) == 2 || done["libgreet"].Status != "" && done["libgreet"].Status != "success"
	})
	for _, c := range []string{"libgreet", "greeter"} {
		if b := done[c]; b.Status != "success" {
			t.Fatalf("%s: build %d %s: %s\n%s", c, b.ID, b.Status, b.Summary, procs.tails())
		}
	}
	for c, deb := range map[string]string{"libgreet": "libgreet-dev_1.0-1_amd64.deb", "greeter": "greeter_1.0_amd64.deb"} {
		var stepList []struct {
			Name    string    `json:"name"`
			Status  string    `json:"status"`
			Summary string    `json:"summary"`
			Started time.Time `json:"started"`
			Ended   time.Time `json:"ended"`
		}
		if err := getJSON(fmt.Sprintf("%s/api/v1/builds/%d/steps", base, done[c].ID), &stepList); err != nil {
			t.Fatal(err)
		}
		var pbuilder string
		var tools time.Duration
		for _, s := range stepList {
			t.Logf("%s step %s: %s: %s (%s)", c, s.Name, s.Status, s.Summary, s.Ended.Sub(s.Started).Round(time.Millisecond))
			switch s.Name {
			case "pbuilder":
				pbuilder = s.Summary
				tools += s.Ended.Sub(s.Started)
			case "lintian":
				tools += s.Ended.Sub(s.Started)
			}
		}
		if !strings.Contains(pbuilder, deb) {
			t.Errorf("%s's pbuilder step says %q", c, pbuilder)
		}
		// The farm's own share of the build (docs/benchmarks.md): all but
		// the distribution's tools, from the worker starting it to the
		// result recorded after the publish. A figure, not a test.
		wall := done[c].Ended.Sub(done[c].Started)
		t.Logf("%s: wall %s, pbuilder and lintian %s, the farm's overhead %s (%.1f%%)", c, wall.Round(time.Millisecond),
			tools.Round(time.Millisecond), (wall - tools).Round(time.Millisecond), 100*float64(wall-tools)/float64(wall))
	}
	if !done["greeter"].Started.After(done["libgreet"].Ended) {
		t.Errorf("greeter started %s, before libgreet ended %s", done["greeter"].Started, done["libgreet"].Ended)
	}
	t.Logf("forced libgreet; libgreet and greeter built and published by the farm in %s", time.Since(start).Round(time.Second))
	verifyAptInstall(t, &farmRepo{url: base + "/repos/dev/apt/debian", codename: "bookworm", arch: "amd64", key: pubKey})
}

// gitFixture commits steps/testdata/NAME into a fresh repository on main.
func gitFixture(t *testing.T, dir, name string) string {
	t.Helper()
	p := filepath.Join(dir, "src", name)
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-a", filepath.Join("..", "steps", "testdata", name)+"/.", p).CombinedOutput(); err != nil {
		t.Fatalf("copy fixture: %v\n%s", err, out)
	}
	kilntest.GitRepo(t, kilntest.GitAt(p)).Commit("main", name+" 1.0")
	return p
}

// kilnBinary is the kiln binary the tests run as processes: $KILN_BIN (an
// absolute path; make e2e and make bench pass the bin/kiln their build
// target made), or else one built from this tree for the test.
func kilnBinary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("KILN_BIN"); p != "" {
		if !filepath.IsAbs(p) {
			t.Fatalf("KILN_BIN=%s: want an absolute path (tests run in the package directory)", p)
		}
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("KILN_BIN: %v", err)
		}
		return p
	}
	kilntest.NeedTool(t, "go")
	p := filepath.Join(t.TempDir(), "kiln")
	if out, err := exec.Command("go", "build", "-o", p, "../cmd/kiln").CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/kiln: %v\n%s", err, out)
	}
	return p
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func getJSON(url string, v any) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// processes are the farm's processes, each in its own process group with
// its output in DIR/NAME.log; the test's cleanup stops them.
type processes struct {
	t     *testing.T
	dir   string
	names []string
	cmds  []*exec.Cmd
	exits []chan error
}

func (p *processes) start(name string, env []string, argv ...string) {
	p.t.Helper()
	log, err := os.Create(filepath.Join(p.dir, name+".log"))
	if err != nil {
		p.t.Fatal(err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("start %s: %v", name, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); log.Close() }()
	p.names, p.cmds, p.exits = append(p.names, name), append(p.cmds, cmd), append(p.exits, exited)
	p.t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	})
}

// dead names a process that has exited, "" while all run.
func (p *processes) dead() string {
	for i, ch := range p.exits {
		select {
		case err := <-ch:
			ch <- err
			return fmt.Sprintf("%s exited: %v", p.names[i], err)
		default:
		}
	}
	return ""
}

// tails returns the end of every process's log.
func (p *processes) tails() string {
	var b strings.Builder
	for _, n := range p.names {
		f, err := os.Open(filepath.Join(p.dir, n+".log"))
		if err != nil {
			continue
		}
		data, _ := io.ReadAll(f)
		f.Close()
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		fmt.Fprintf(&b, "--- %s.log (last lines)\n%s\n", n, strings.Join(lines[max(0, len(lines)-25):], "\n"))
	}
	return b.String()
}

func waitUntil(t *testing.T, p *processes, timeout time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if d := p.dead(); d != "" {
			t.Fatalf("waiting for %s: %s\n%s", what, d, p.tails())
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s\n%s", timeout, what, p.tails())
		}
		time.Sleep(time.Second)
	}
}
