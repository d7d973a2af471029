package master_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kiln-build/kiln/internal/kilntest"
	"github.com/kiln-build/kiln/internal/kilntest/farmtest"
	"github.com/kiln-build/kiln/master"
	"github.com/kiln-build/kiln/master/api"
	"github.com/kiln-build/kiln/protocol"
)

// intakeYAML is one shell target whose builds need the tag lane and sleep
// a while, with components and workers filled in per test.
const intakeYAML = `
%s
targets:
  - distro: debian
    versions: [bookworm]
    arches: [amd64]
    kind: shell
    format: apt
    tags: [lane]
    steps:
      - {name: build, type: shell, script: "cat VERSION; sleep %s"}
components:
%s
workers:
%s
repos:
  channels:
    - {name: dev, key: demo}
`

// servedRepo is a git repository served over smart HTTP on loopback with a
// VERSION file committed on main; its URL is what the farm fetches.
func servedRepo(t *testing.T, name string) *kilntest.Repo {
	t.Helper()
	r := kilntest.ServeGit(t).Repo(name + ".git")
	r.Write("VERSION", name+" 1.0\n")
	r.Commit("main", "release 1.0")
	return r
}

func (f *farm) changes() []*api.Change {
	f.t.Helper()
	cs, _ := f.api().Changes(api.ChangeFilter{Limit: 100})
	return cs
}

// waitBuilds waits until the change's builds all ended and returns them.
func (f *farm) waitChange(c *api.Change) []*api.Build {
	f.t.Helper()
	builds, _ := f.api().Builds(api.BuildFilter{Buildset: c.Buildset})
	ids := make([]int64, len(builds))
	for i, b := range builds {
		ids[i] = b.ID
	}
	return f.waitFinished(60*time.Second, ids...)
}

// read GETs an API path anonymously, as kiln ctl does on a farm with
// public pages, and decodes the JSON answer.
func (f *farm) read(path string, out any) int {
	f.t.Helper()
	code, body := f.get(path)
	if err := json.Unmarshal([]byte(body), out); err != nil {
		f.t.Fatalf("GET %s: HTTP %d, decode %q: %v", path, code, body, err)
	}
	return code
}

func sign(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// githubPush posts a GitHub push event, signed with secret unless it is
// empty, and returns the status and body.
func (f *farm) githubPush(secret, delivery, repoURL, rev string) (int, string) {
	f.t.Helper()
	body := fmt.Appendf(nil, `{"ref":"refs/heads/main","before":"%s","after":"%s",
		"repository":{"full_name":"farm/app","clone_url":%q,"default_branch":"main"},
		"head_commit":{"id":"%s","message":"release"},"sender":{"login":"ada"}}`,
		strings.Repeat("0", 40), rev, repoURL, rev)
	req, _ := http.NewRequest("POST", f.url("/hooks/github"), strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", delivery)
	if secret != "" {
		req.Header.Set("X-Hub-Signature-256", sign(secret, body))
	}
	return send(f.t, req)
}

func TestSignedGitHubPushBuildsAndReplaysMakeOneChange(t *testing.T) {
	repo := servedRepo(t, "app")
	url := repo.URL
	cfgFor := func(secretFile string) string {
		return fmt.Sprintf(intakeYAML, "master:\n  poll: {enabled: false}\n  hooks:\n    github: {secret: "+secretFile+"}",
			"0", "  - {name: app, git: "+url+"}", "  - {name: w1, credentials: w1.token, slots: 2}")
	}
	f := startFarm(t, cfgFor("github.secret"), farmtest.File("github.secret", "hook-secret-1\n"), farmtest.File("github2.secret", "hook-secret-2\n"))
	f.runWorker("w1", 2, "lane")
	f.waitConnected("w1")

	rev := repo.Commit("main", "a change to build")
	for _, tc := range []struct{ name, secret string }{{"unsigned", ""}, {"wrong secret", "not-the-secret"}} {
		if code, body := f.githubPush(tc.secret, "d-"+tc.name, url, rev); code != http.StatusUnauthorized {
			t.Errorf("%s push: HTTP %d %s, want 401", tc.name, code, body)
		}
	}
	if n := len(f.changes()); n != 0 {
		t.Fatalf("refused pushes recorded %d changes", n)
	}

	code, body := f.githubPush("hook-secret-1", "d-1", url, rev)
	if code != http.StatusOK || !strings.HasPrefix(body, "accepted: 1 change(s): app@main") {
		t.Fatalf("signed push: HTTP %d %s", code, body)
	}
	cs := f.changes()
	if len(cs) != 1 {
		t.Fatalf("changes after one push: %+v", cs)
	}
	want := api.Source{Kind: "webhook", Provider: "github", Delivery: "d-1", User: "ada"}
	if c := cs[0]; c.Source == nil || *c.Source != want || c.Revision != rev || c.Ref != "refs/heads/main" {
		t.Errorf("change = %+v source %+v, want source %+v at %s", c, c.Source, want, rev)
	}
	for _, b := range f.waitChange(cs[0]) {
		if b.Status != protocol.StatusSuccess || b.Revision != rev {
			t.Errorf("build %d %s: %s at %s (%s)", b.ID, b.Builder, b.Status, b.Revision, b.Summary)
		}
	}

	// The forge retries: the handler remembers the delivery.
	if code, body := f.githubPush("hook-secret-1", "d-1", url, rev); code != http.StatusOK || !strings.HasPrefix(body, "duplicate") {
		t.Errorf("replayed delivery: HTTP %d %s", code, body)
	}
	// A new secret makes a new handler, which has forgotten the delivery;
	// the farm's record still refuses it.
	f.writeConfig(cfgFor("github2.secret"))
	if err := f.m().Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if code, body := f.githubPush("hook-secret-2", "d-1", url, rev); code != http.StatusOK {
		t.Errorf("replay after the secret changed: HTTP %d %s", code, body)
	}
	if n := len(f.changes()); n != 1 {
		t.Errorf("replays recorded %d changes, want 1", n)
	}
	// The change and its origin are in the API as kiln ctl reads them.
	var list api.ChangeList
	if code := f.read("/api/v1/changes", &list); code != http.StatusOK || len(list.Changes) != 1 || list.Changes[0].Source == nil || list.Changes[0].Source.Delivery != "d-1" {
		t.Errorf("GET /api/v1/changes: HTTP %d %+v", code, list)
	}
}

func TestPollerPicksUpPushesAndCarriesOnAfterRestart(t *testing.T) {
	repo := servedRepo(t, "lib")
	url := repo.URL
	f := startFarm(t, fmt.Sprintf(intakeYAML, "master:\n  poll: {interval: 1s}", "0",
		"  - {name: lib, git: "+url+"}", "  - {name: w1, credentials: w1.token, slots: 2}"))
	f.runWorker("w1", 2, "lane")
	f.waitConnected("w1")
	kilntest.WaitFor(t, 10*time.Second, "the first poll", func() bool {
		ps := f.api().Pollers()
		return len(ps) == 1 && ps[0].Refs == 1
	})
	if n := len(f.changes()); n != 0 {
		t.Fatalf("first sight recorded %d changes, want none", n)
	}

	rev := repo.Commit("main", "polled")
	kilntest.WaitFor(t, 10*time.Second, "the poller's change", func() bool { return len(f.changes()) == 1 })
	c := f.changes()[0]
	if c.Revision != rev || c.Source == nil || c.Source.Kind != "poller" || !strings.HasSuffix(c.Source.Poller, "/lib") {
		t.Fatalf("change = %+v source %+v", c, c.Source)
	}
	for _, b := range f.waitChange(c) {
		if b.Status != protocol.StatusSuccess {
			t.Errorf("build %d: %s %s", b.ID, b.Status, b.Summary)
		}
	}
	var ps []api.Poller
	if code := f.read("/api/v1/pollers", &ps); code != http.StatusOK || len(ps) != 1 || ps[0].URL != url || ps[0].LastError != "" {
		t.Errorf("GET /api/v1/pollers: HTTP %d %+v", code, ps)
	}

	// A push while no master runs: the new pollers start from the farm's
	// record, so it is a change even on their first sight.
	f.Stop()
	during := repo.Commit("main", "pushed while the master was down")
	f.Restart()
	kilntest.WaitFor(t, 10*time.Second, "the change pushed during the outage", func() bool { return len(f.changes()) == 2 })
	if c := f.changes()[0]; c.Revision != during {
		t.Errorf("after restart: change at %s, want %s", c.Revision, during)
	}
}

// configRepoYAML is the farm config kept in the config repository: the slow
// component, whose builds sleep, and extra components and workers per
// commit, whose builds do not.
func configRepoYAML(masterSection, sleep, slowGit, extraComponents, workers string) string {
	comps := ""
	if slowGit != "" {
		// Only w1 takes slow's builds, so w2 is free for the others.
		comps = "  - {name: slow, git: " + slowGit + ", collapse: false, tags: [slow-lane],\n" +
			"     steps: [{name: build, type: shell, script: \"sleep " + sleep + "\"}]}\n"
	}
	return fmt.Sprintf(intakeYAML, masterSection, "0", comps+extraComponents, workers)
}

// toggle serves h, or answers 503 while down, as a forge in an outage.
type toggle struct {
	h    http.Handler
	down atomic.Bool
}

func (tg *toggle) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if tg.down.Load() {
		http.Error(w, "maintenance", http.StatusServiceUnavailable)
		return
	}
	tg.h.ServeHTTP(w, r)
}

// configRepoFarm serves a config repository over HTTP and starts a master,
// with its files in dir, whose bootstrap file points at it.
func configRepoFarm(t *testing.T, dir, first string) (*farm, *kilntest.Repo, *toggle, string) {
	t.Helper()
	root := t.TempDir()
	tg := &toggle{h: kilntest.GitHandler(t, root)}
	srv := &http.Server{Handler: tg}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	url := "http://" + ln.Addr().String() + "/farm-config.git"
	repo := kilntest.GitRepo(t, kilntest.GitPushTo(filepath.Join(root, "farm-config.git")))
	repo.Write("kiln/farm.yaml", first)
	repo.Write("README", "the farm's config\n")
	repo.Commit("main", "first config")
	boot := "master:\n  config: {git: " + url + ", branch: main, path: kiln, poll: 1s}\n"
	return startFarm(t, boot, farmtest.Dir(dir)), repo, tg, url
}

// credentials is where a config repository's worker entry finds the
// token startFarm wrote into dir: the checkout is elsewhere, so the path is
// absolute.
func credentials(dir, worker string) string { return filepath.Join(dir, worker+".token") }

func TestConfigRepositoryReloadsLive(t *testing.T) {
	dir := t.TempDir()
	slowGit, freshGit := srcRepo(t, "slow"), srcRepo(t, "fresh")
	w1 := "  - {name: w1, credentials: " + credentials(dir, "w1") + ", slots: 20}\n"
	w2 := "  - {name: w2, credentials: " + credentials(dir, "w2") + ", slots: 2}\n"
	fresh := "  - {name: fresh, git: " + freshGit + "}\n"
	const sleep = "12"
	f, repo, _, _ := configRepoFarm(t, dir, configRepoYAML("", sleep, slowGit, "", w1))
	v1 := f.api().ConfigStatus().Commit
	f.runWorker("w1", 20, "lane", "slow-lane")
	f.waitConnected("w1")

	// 25 requests of slow: 20 run, 5 wait for a slot.
	ctx := context.Background()
	var slow []int64
	for range 25 {
		res, err := f.api().Force(ctx, api.ForceRequest{Component: "slow"})
		if err != nil {
			t.Fatal(err)
		}
		slow = append(slow, res.Builds...)
	}
	running := func() []*api.Build {
		bs, _ := f.api().Builds(api.BuildFilter{Component: "slow", Status: protocol.StatusRunning})
		return bs
	}
	kilntest.WaitFor(t, 20*time.Second, "20 running builds", func() bool { return len(running()) == 20 })
	startedOn := map[int64]string{}
	for _, b := range running() {
		startedOn[b.ID] = b.Worker
	}

	// A commit adds a component and a worker.
	pushed := time.Now()
	repo.Write("kiln/farm.yaml", configRepoYAML("", sleep, slowGit, fresh, w1+w2))
	v2 := repo.Commit("main", "add fresh and w2")
	kilntest.WaitFor(t, 5*time.Second, "the commit adding fresh", func() bool { return f.api().ConfigStatus().Commit == v2 })
	st := f.api().ConfigStatus()
	if took, _ := time.ParseDuration(st.Took); took <= 0 || took > time.Second || st.Added != 1 || st.Error != nil {
		t.Errorf("reload of %s: %+v (%s after the push)", v2, st, time.Since(pushed))
	}
	res, err := f.api().Force(ctx, api.ForceRequest{Component: "fresh"})
	if err != nil {
		t.Fatalf("force the new component: %v", err)
	}
	f.runWorker("w2", 2, "lane")
	f.waitConnected("w2") // the embedded NATS server learned its user
	for _, b := range f.waitFinished(30*time.Second, res.Builds...) {
		if b.Status != protocol.StatusSuccess {
			t.Errorf("build of the new component %d: %s %s", b.ID, b.Status, b.Summary)
		}
	}

	// A broken commit is refused with its file and line; v2 keeps running.
	broken := configRepoYAML("", sleep, slowGit, "  - {name: fresh, git: "+freshGit+", depends: [nosuch]}\n", w1+w2)
	line := 1 + strings.Count(broken[:strings.Index(broken, "nosuch")], "\n")
	repo.Write("kiln/farm.yaml", broken)
	v3 := repo.Commit("main", "broken")
	kilntest.WaitFor(t, 5*time.Second, "the broken commit to be refused", func() bool {
		e := f.api().ConfigStatus().Error
		return e != nil && e.Commit == v3
	})
	st = f.api().ConfigStatus()
	if st.Commit != v2 || st.Error.File != "kiln/farm.yaml" || st.Error.Line != line || !strings.Contains(st.Error.Message, `unknown dependency "nosuch"`) {
		t.Errorf("status after the broken commit: %+v error %+v, want kiln/farm.yaml:%d", st, st.Error, line)
	}
	var viaAPI api.ConfigStatus
	if code := f.read("/api/v1/config", &viaAPI); code != http.StatusOK || viaAPI.Error == nil || viaAPI.Error.Line != line {
		t.Errorf("GET /api/v1/config: HTTP %d %+v", code, viaAPI)
	}
	if _, err := f.api().Force(ctx, api.ForceRequest{Component: "fresh"}); err != nil {
		t.Errorf("the farm stopped running v2: %v", err)
	}

	// The fix also retires slow: its queued requests are cancelled with a
	// reason, its running builds finish.
	repo.Write("kiln/farm.yaml", configRepoYAML("", sleep, "", fresh, w1+w2))
	v4 := repo.Commit("main", "fix, and retire slow")
	kilntest.WaitFor(t, 5*time.Second, "the fix", func() bool { return f.api().ConfigStatus().Commit == v4 })
	if st := f.api().ConfigStatus(); st.Error != nil || st.Removed != 1 || st.Cancelled != 5 {
		t.Errorf("status after the fix: %+v", st)
	}
	builds := f.waitFinished(60*time.Second, slow...)
	for _, b := range builds {
		if w, ran := startedOn[b.ID]; ran {
			if b.Status != protocol.StatusSuccess || len(b.Attempts) != 1 || b.Worker != w {
				t.Errorf("running build %d was disturbed: %s on %s, %d attempts (%s)", b.ID, b.Status, b.Worker, len(b.Attempts), b.Summary)
			}
			continue
		}
		if b.Status != protocol.StatusCancelled || !strings.Contains(b.Summary, "builder slow@debian/bookworm/amd64 was removed from the configuration") {
			t.Errorf("queued build %d of the removed builder: %s %q", b.ID, b.Status, b.Summary)
		}
	}
	if v1 == v4 {
		t.Fatal("commits did not move")
	}
}

func TestConfigRepositoryOutageKeepsLastGoodConfig(t *testing.T) {
	dir := t.TempDir()
	slowGit := srcRepo(t, "slow")
	w1 := "  - {name: w1, credentials: " + credentials(dir, "w1") + ", slots: 2}\n"
	// The config repository's own webhook comes through the generic endpoint.
	t.Setenv("KILN_TEST_CONFIG_HOOK", "config-hook-secret")
	hooksSection := "master:\n  hooks:\n    generic: {secret: env:KILN_TEST_CONFIG_HOOK}"
	f, repo, forge, url := configRepoFarm(t, dir, configRepoYAML(hooksSection, "0", slowGit, "", w1))
	v1 := f.api().ConfigStatus().Commit

	forge.down.Store(true)
	kilntest.WaitFor(t, 10*time.Second, "two failed polls", func() bool {
		st := f.api().ConfigStatus()
		return st.Fetch != nil && st.Fetch.Failures >= 2
	})
	st := f.api().ConfigStatus()
	if st.Commit != v1 || st.Fetch.LastError == "" || st.Fetch.NextPoll.Sub(st.Fetch.LastPoll) < 3*time.Second {
		t.Errorf("during the outage (want a backoff of 4s ± 10%% after two failures): %+v fetch %+v", st, st.Fetch)
	}
	if _, err := f.api().Force(context.Background(), api.ForceRequest{Component: "slow"}); err != nil {
		t.Errorf("force during the outage: %v", err)
	}
	if code, body := f.get("/api/v1/config"); code != http.StatusOK || !strings.Contains(body, `"last_error"`) {
		t.Errorf("GET /api/v1/config during the outage: %d %s", code, body)
	}

	freshGit := srcRepo(t, "fresh")
	repo.Write("kiln/farm.yaml", configRepoYAML(hooksSection, "0", slowGit, "  - {name: fresh, git: "+freshGit+"}\n", w1))
	v2 := repo.Commit("main", "add fresh")
	forge.down.Store(false)
	// The push's webhook applies it at once, without waiting out the
	// poller's backoff.
	body := fmt.Appendf(nil, `{"repository":%q,"ref":"refs/heads/main","after":"%s"}`, url, v2)
	for _, tc := range []struct {
		sig  string
		want int
	}{{"", http.StatusUnauthorized}, {sign("config-hook-secret", body), http.StatusOK}} {
		req, _ := http.NewRequest("POST", f.url("/hooks/config"), strings.NewReader(string(body)))
		req.Header.Set("X-Kiln-Delivery", "config-1")
		if tc.sig != "" {
			req.Header.Set("X-Kiln-Signature", tc.sig)
		}
		if code, b := send(t, req); code != tc.want {
			t.Errorf("/hooks/config signed=%v: HTTP %d %s, want %d", tc.sig != "", code, b, tc.want)
		}
	}
	if st := f.api().ConfigStatus(); st.Commit != v2 || st.Error != nil {
		t.Errorf("after the config webhook: %+v", st)
	}
	if n := len(f.changes()); n != 1 {
		t.Errorf("the config push recorded changes: %d, want only the forced one", n)
	}
	kilntest.WaitFor(t, 15*time.Second, "the poller to recover", func() bool { return f.api().ConfigStatus().Fetch.Failures == 0 })
}

func TestLocalConfigReloadsWhenEdited(t *testing.T) {
	libGit := srcRepo(t, "lib")
	const w1 = "  - {name: w1, credentials: w1.token, slots: 2}\n"
	config := func(comps string) string { return fmt.Sprintf(intakeYAML, "", "0", comps, w1) }
	f := startFarm(t, config("  - {name: lib, git: "+libGit+"}\n"))
	cfgPath := f.configPath()
	write := func(comps string) { f.writeConfig(config(comps)) }
	v1 := f.api().ConfigStatus().Commit

	write("  - {name: lib, git: " + libGit + "}\n  - {name: app, git: " + libGit + ", depends: [lib]}\n")
	kilntest.WaitFor(t, 5*time.Second, "the edit to be noticed", func() bool { return f.api().ConfigStatus().Commit != v1 })
	if _, err := f.api().Force(context.Background(), api.ForceRequest{Component: "app"}); err != nil {
		t.Fatalf("force the added component: %v", err)
	}
	v2 := f.api().ConfigStatus().Commit

	write("  - {name: lib, git: " + libGit + ", depends: [app]}\n  - {name: app, git: " + libGit + ", depends: [lib]}\n")
	err := f.m().Reload(context.Background()) // what SIGHUP does
	st := f.api().ConfigStatus()
	if !errors.Is(err, master.ErrConfigRefused) || st.Commit != v2 || st.Error == nil || st.Error.File != cfgPath || st.Error.Line == 0 {
		t.Fatalf("a cycle: Reload = %v, status %+v error %+v", err, st, st.Error)
	}
	if !strings.Contains(st.Error.Message, "cycle") {
		t.Errorf("error message %q does not name the cycle", st.Error.Message)
	}

	write("  - {name: lib, git: " + libGit + "}\n")
	kilntest.WaitFor(t, 5*time.Second, "the fix", func() bool { st := f.api().ConfigStatus(); return st.Error == nil && st.Commit != v2 })
	if st := f.api().ConfigStatus(); st.Removed != 1 {
		t.Errorf("after removing app: %+v", st)
	}
	var raw json.RawMessage
	if code := f.read("/api/v1/config", &raw); code != http.StatusOK {
		t.Errorf("GET /api/v1/config: HTTP %d %s", code, raw)
	}
}
