package master_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/kiln-build/kiln/master/api"
	"github.com/kiln-build/kiln/protocol"
	"github.com/kiln-build/kiln/worker"
)

// kilnBin is the kiln binary TestMain builds for tests that crash a worker
// process; kilnBinErr says why it is missing.
var (
	kilnBin    string
	kilnBinErr error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "kiln-bin-")
	if err == nil {
		kilnBin = filepath.Join(dir, "kiln")
		_, file, _, _ := runtime.Caller(0)
		cmd := exec.Command("go", "build", "-o", kilnBin, "./cmd/kiln")
		cmd.Dir = filepath.Join(filepath.Dir(file), "..")
		if out, berr := cmd.CombinedOutput(); berr != nil {
			kilnBinErr = fmt.Errorf("go build ./cmd/kiln: %v\n%s", berr, out)
		}
	} else {
		kilnBinErr = err
	}
	code := m.Run()
	if dir != "" {
		os.RemoveAll(dir)
	}
	os.Exit(code)
}

// e2eYAML: a chain liba → libb → app over two targets whose builds need the
// lane tags deb-lane and rpm-lane (tags no host detects by itself). Each
// build checks its component out, logs, sleeps a little so the order is
// measurable, and uploads one artifact.
const e2eYAML = `
master:
  heartbeat_timeout: 1s
targets:
  - distro: debian
    versions: [bookworm]
    arches: [amd64]
    kind: shell
    format: apt
    tags: [deb-lane]
    steps: &steps
      - name: build
        type: shell
        script: |
          echo "building ${prop.builder} attempt ${prop.attempt}"
          cat VERSION
          sleep %s
          mkdir -p out
          echo "${prop.component} for ${prop.target}" > out/${prop.component}.pkg
      - {name: upload, type: upload, artifacts: ["out/*.pkg"]}
  - distro: centos
    versions: ["9"]
    arches: [x86_64]
    kind: shell
    format: yum
    tags: [rpm-lane]
    steps: *steps
components:
  - {name: liba, git: %s, rebuild: transitive}
  - {name: libb, git: %s, depends: [liba]}
  - {name: app, git: %s, depends: [libb]}
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

// gitRepo makes a real repository with one commit and returns its path.
func gitRepo(t *testing.T, dir, name string) string {
	t.Helper()
	p := filepath.Join(dir, "src", name)
	repo, err := git.PlainInitWithOptions(p, &git.PlainInitOptions{InitOptions: git.InitOptions{DefaultBranch: plumbing.Main}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p, "VERSION"), []byte(name+" 1.0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wt.Add("VERSION"); err != nil {
		t.Fatal(err)
	}
	sig := &object.Signature{Name: "Kiln Test", Email: "test@kiln.invalid", When: time.Now()}
	if _, err := wt.Commit("release "+name+" 1.0", &git.CommitOptions{Author: sig}); err != nil {
		t.Fatal(err)
	}
	return p
}

// newE2EFarm starts a master on the e2e config with real git repositories.
func newE2EFarm(t *testing.T, sleep string) *farm {
	t.Helper()
	dir := t.TempDir()
	cfg := fmt.Sprintf(e2eYAML, sleep, gitRepo(t, dir, "liba"), gitRepo(t, dir, "libb"), gitRepo(t, dir, "app"))
	return startFarm(t, dir, writeFarm(t, dir, cfg, "w1", "w2", "w3"))
}

// runWorker runs the real worker package in-process until the test ends
// (or stop is called).
func (f *farm) runWorker(name string, slots int, tags ...string) (stop func()) {
	f.t.Helper()
	cancel, done := f.startWorker(name, "nats://"+f.natsAddr, slots, tags...)
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil && !strings.Contains(err.Error(), "context canceled") {
			f.t.Errorf("worker %s: %v", name, err)
		}
	}
	f.t.Cleanup(stop)
	return stop
}

// startWorker runs one process of the real worker package in-process,
// connecting to url, for tests that look at how its Run ends.
func (f *farm) startWorker(name, url string, slots int, tags ...string) (cancel context.CancelFunc, done <-chan error) {
	f.t.Helper()
	// Each process its own workspace: a new worker clears what it finds.
	dir, err := os.MkdirTemp(f.dir, "work-"+name+"-")
	if err != nil {
		f.t.Fatal(err)
	}
	w, err := worker.New(worker.Config{Name: name, NATSURL: url, Token: "secret-" + name, Tags: tags, Slots: slots,
		WorkDir: dir, HeartbeatInterval: 200 * time.Millisecond, Logger: testLogger(f.t)})
	if err != nil {
		f.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	f.t.Cleanup(cancel)
	ran := make(chan error, 1)
	go func() { ran <- w.Run(ctx) }()
	return cancel, ran
}

func (f *farm) waitConnected(names ...string) {
	f.t.Helper()
	waitFor(f.t, 10*time.Second, "workers "+strings.Join(names, ", ")+" to connect", func() bool {
		up := map[string]bool{}
		for _, w := range f.m.API().Workers() {
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

func (f *farm) get(path string) (int, string) {
	f.t.Helper()
	req, _ := http.NewRequest("GET", f.url(path), nil)
	return send(f.t, req)
}

func TestE2EChainOverTwoTargetsOnTaggedWorkers(t *testing.T) {
	f := newE2EFarm(t, "0.2")
	f.runWorker("w1", 2, "deb-lane")
	f.runWorker("w2", 2, "rpm-lane")
	f.waitConnected("w1", "w2")

	res := f.force("liba")
	builds := f.waitFinished(60*time.Second, res.Builds...)
	byBuilder := map[string]*api.Build{}
	for _, b := range builds {
		byBuilder[b.Builder] = b
		if b.Status != protocol.StatusSuccess {
			t.Fatalf("%s: %s (%s)", b.Builder, b.Status, b.Summary)
		}
	}
	if len(byBuilder) != 6 {
		t.Fatalf("%d builders built, want 6", len(byBuilder))
	}
	lane := map[string]string{"w1": "deb-lane", "w2": "rpm-lane"}
	for _, tgt := range []string{"debian/bookworm/amd64", "centos/9/x86_64"} {
		chain := []*api.Build{byBuilder["liba@"+tgt], byBuilder["libb@"+tgt], byBuilder["app@"+tgt]}
		for i, b := range chain {
			if !strings.Contains(strings.Join(b.Tags, ","), lane[b.Worker]) {
				t.Errorf("%s needs %v but ran on %s (%s)", b.Builder, b.Tags, b.Worker, lane[b.Worker])
			}
			if len(b.Artifacts) != 1 || b.Artifacts[0].Name != "out/"+b.Component+".pkg" {
				t.Errorf("%s artifacts = %+v", b.Builder, b.Artifacts)
			}
			if i > 0 && b.Started.Before(chain[i-1].Ended) {
				t.Errorf("%s started %s before its dependency %s ended %s", b.Builder, b.Started.Format(time.StampMicro), chain[i-1].Builder, chain[i-1].Ended.Format(time.StampMicro))
			}
		}
	}
	app := byBuilder["app@centos/9/x86_64"]
	if len(app.Revision) != 40 {
		t.Errorf("a build of the branch head should record the revision it built, got %q", app.Revision)
	}
	_, logText := f.get("/api/v1/builds/" + itoa(app.ID) + "/log")
	if !strings.Contains(logText, "building app@centos/9/x86_64 attempt 1") || !strings.Contains(logText, "app 1.0") {
		t.Errorf("app log = %q", logText)
	}
	code, content := f.get("/api/v1/builds/" + itoa(app.ID) + "/artifacts/out/app.pkg")
	if code != 200 || content != "app for centos/9/x86_64\n" {
		t.Errorf("app.pkg: HTTP %d %q", code, content)
	}
}

func TestE2EKilledWorkerProcessBuildIsRetriedOnTheOther(t *testing.T) {
	if kilnBinErr != nil {
		t.Fatalf("kiln binary: %v", kilnBinErr)
	}
	f := newE2EFarm(t, "2")
	// w1 is a real `kiln worker` process; w2 joins in-process.
	workDir := filepath.Join(f.dir, "proc-w1")
	cmd := exec.Command(kilnBin, "worker", "--master", "nats://"+f.natsAddr, "--name", "w1",
		"--credentials", filepath.Join(f.dir, "w1.token"), "--tags", "deb-lane", "--slots", "1", "--workdir", workDir)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if testing.Verbose() {
		cmd.Stderr = os.Stderr
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	f.waitConnected("w1")

	id := f.force("liba@debian/bookworm/amd64").Builds[0]
	waitFor(t, 20*time.Second, "w1 to log from the build step", func() bool {
		_, logText := f.get("/api/v1/builds/" + itoa(id) + "/log")
		return strings.Contains(logText, "attempt 1")
	})
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	f.runWorker("w2", 1, "deb-lane")

	b := f.waitFinished(30*time.Second, id)[0]
	if b.Status != protocol.StatusSuccess || b.Worker != "w2" {
		t.Fatalf("build ended %s on %s (%s), want success on w2", b.Status, b.Worker, b.Summary)
	}
	if len(b.Attempts) != 2 || b.Attempts[0].Worker != "w1" || b.Attempts[0].Status != protocol.StatusLost {
		t.Fatalf("attempts = %+v, want a lost attempt on w1 first", b.Attempts)
	}
	_, logText := f.get("/api/v1/builds/" + itoa(id) + "/log")
	if !strings.Contains(logText, "attempt 1") || !strings.Contains(logText, "attempt 2") {
		t.Errorf("log should keep both attempts: %q", logText)
	}
}

func TestE2EMasterRestartKeepsEverythingAndResumes(t *testing.T) {
	f := newE2EFarm(t, "0.1")
	stopW1 := f.runWorker("w1", 2, "deb-lane")
	f.waitConnected("w1")
	res := f.force("liba") // debian builds run; centos ones queue: no rpm-lane worker
	var deb, rpm []int64
	for _, id := range res.Builds {
		if strings.Contains(f.build(id).Target, "debian") {
			deb = append(deb, id)
		} else {
			rpm = append(rpm, id)
		}
	}
	f.waitFinished(60*time.Second, deb...)
	stopW1()
	f.stop()

	f.start()
	for _, id := range deb {
		b := f.build(id)
		if b.Status != protocol.StatusSuccess || len(b.Artifacts) != 1 {
			t.Fatalf("after restart %s: %s, artifacts %v", b.Builder, b.Status, b.Artifacts)
		}
		if _, logText := f.get("/api/v1/builds/" + itoa(id) + "/log"); !strings.Contains(logText, "building "+b.Builder) {
			t.Errorf("after restart, log of %s = %q", b.Builder, logText)
		}
		if code, content := f.get("/api/v1/builds/" + itoa(id) + "/artifacts/" + b.Artifacts[0].Name); code != 200 || !strings.HasPrefix(content, b.Component) {
			t.Errorf("after restart, artifact of %s: HTTP %d %q", b.Builder, code, content)
		}
	}
	for _, id := range rpm {
		if b := f.build(id); b.Status != protocol.StatusPending {
			t.Fatalf("queued %s after restart: %s", b.Builder, b.Status)
		}
	}
	f.runWorker("w2", 2, "rpm-lane")
	for _, b := range f.waitFinished(60*time.Second, rpm...) {
		if b.Status != protocol.StatusSuccess || b.Worker != "w2" {
			t.Errorf("resumed %s: %s on %s (%s)", b.Builder, b.Status, b.Worker, b.Summary)
		}
	}
}
