package master_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kiln-build/kiln/internal/kilntest"
	"github.com/kiln-build/kiln/master/api"
	"github.com/kiln-build/kiln/protocol"
)

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

// srcRepo makes a real repository whose one commit on main holds VERSION
// "NAME 1.0", and returns its path.
func srcRepo(t *testing.T, name string) string {
	t.Helper()
	r := kilntest.GitRepo(t)
	r.Write("VERSION", name+" 1.0\n")
	r.Commit("main", "release "+name+" 1.0")
	return r.Dir
}

// newE2EFarm starts a master on the e2e config with real git repositories.
func newE2EFarm(t *testing.T, sleep string) *farm {
	t.Helper()
	return startFarm(t, fmt.Sprintf(e2eYAML, sleep, srcRepo(t, "liba"), srcRepo(t, "libb"), srcRepo(t, "app")))
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

func TestE2EMasterRestartKeepsEverythingAndResumes(t *testing.T) {
	f := newE2EFarm(t, "0.1")
	w1 := f.runWorker("w1", 2, "deb-lane")
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
	if err := w1.Stop(); err != nil {
		t.Errorf("worker w1: %v", err)
	}
	f.Restart()
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
