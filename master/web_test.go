package master_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/crypto/bcrypt"

	"github.com/kiln-build/kiln/internal/kilntest"
	"github.com/kiln-build/kiln/internal/kilntest/farmtest"
	"github.com/kiln-build/kiln/master/api"
	"github.com/kiln-build/kiln/master/state"
	"github.com/kiln-build/kiln/master/web/webtest"
	"github.com/kiln-build/kiln/protocol"
)

// hostileMessage is a commit message a page must show as text.
const hostileMessage = "fix <script>document.title='owned'</script> \x1b[31mred\x1b[0m"

// webYAML: one component built on one target by a shell step that prints a
// few lines slowly, then forwards every line appended to a feed file until a
// stop file appears, so a test decides when lines arrive and when the build
// ends.
const webYAML = `
master:
  public_pages: %t
targets:
  - distro: debian
    versions: [bookworm]
    arches: [amd64]
    kind: shell
    format: apt
    tags: [web-lane]
    steps:
      - {name: checkout, type: checkout}
      - name: build
        type: shell
        script: |
          for i in 1 2 3 4 5; do echo "warming up $i"; sleep 0.2; done
          n=0
          while [ ! -e %[2]s/stop ]; do
            c=$(wc -l < %[2]s/feed)
            if [ "$c" -gt "$n" ]; then tail -n +$((n+1)) %[2]s/feed | head -n $((c-n)); n=$c; fi
            sleep 0.1
          done
components:
  - {name: slowlog, git: %[3]s}
  - {name: other, git: %[3]s}
workers:
  - {name: w1, credentials: w1.token, slots: 1}
users:
  - {name: ann, password_hash: "%[4]s"}
  - {name: ops, token: ops.token}
repos:
  channels:
    - {name: dev, key: demo}
`

const annPassword = "correct horse battery"

// newWebFarm starts a master on webYAML with a repository whose only commit
// carries hostileMessage, and a real worker.
func newWebFarm(t *testing.T, public bool) (f *farm, feed func(string), stop func()) {
	t.Helper()
	src := kilntest.GitRepo(t, kilntest.GitAuthor("Eve & Mallory", "eve@kiln.invalid"))
	src.Write("VERSION", "1.0\n")
	src.Commit("main", hostileMessage)
	ctl := t.TempDir()
	if err := os.WriteFile(filepath.Join(ctl, "feed"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(annPassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	f = startFarm(t, fmt.Sprintf(webYAML, public, ctl, src.Dir, hash))
	feed = func(line string) {
		fh, err := os.OpenFile(filepath.Join(ctl, "feed"), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer fh.Close()
		if _, err := fh.WriteString(line + "\n"); err != nil {
			t.Fatal(err)
		}
	}
	stop = func() { _ = os.WriteFile(filepath.Join(ctl, "stop"), nil, 0o644) }
	return f, feed, stop
}

// TestBrowserAgainstTheRealMaster walks the status page of a real master
// (NATS, raft, scheduler) with a real worker running a build whose log
// grows while the page is open.
func TestBrowserAgainstTheRealMaster(t *testing.T) {
	ctx, closeBrowser := webtest.NewBrowser(t)
	// A directory of its own: master/web's TestBrowser saves the same names.
	dir := filepath.Join(webtest.ArtifactsDir(t), "real-master")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	f, feed, stop := newWebFarm(t, true)
	t.Cleanup(stop)
	f.runWorker("w1", 1, "web-lane")
	f.waitConnected("w1")
	// Cleanups run last first: the browser closes its log streams before
	// the build is stopped and the master shut down.
	t.Cleanup(closeBrowser)

	id := f.force("slowlog@debian/bookworm/amd64").Builds[0]
	kilntest.WaitFor(t, 30*time.Second, "the build to print its warm-up lines", func() bool {
		_, log := f.get("/api/v1/builds/" + itoa(id) + "/log")
		return strings.Contains(log, "warming up 5") && f.build(id).Properties["commit_message"] != ""
	})

	webtest.RunScenario(t, ctx, webtest.Farm{
		URL:          f.url(""),
		RunningBuild: id,
		PushLog:      feed,
		User:         "ann",
		Password:     annPassword,
		Forced: func() bool {
			cs, _ := f.api().Changes(api.ChangeFilter{Component: "slowlog"})
			for _, c := range cs {
				if c.Source == nil || c.Source.User != "ann" || c.Revision != "main" {
					continue
				}
				builds, n := f.api().Builds(api.BuildFilter{Buildset: c.Buildset})
				return n == 1 && builds[0].Builder == "slowlog@debian/bookworm/amd64"
			}
			return false
		},
	}, dir)

	// The commit message and author arrive from the checkout; the message
	// holds markup and an ANSI colour.
	err := chromedp.Do(ctx,
		chromedp.Navigate(f.url("/builds/"+itoa(id))),
		chromedp.WaitVisible(chromedp.CSS(`#change .message`)),
		webtest.Screenshot(dir, "build-change.png"),
	)
	if err != nil {
		t.Fatalf("build page: %v", err)
	}
	msg, err := chromedp.Run(ctx, chromedp.InnerHTML(chromedp.CSS(`#change .message`)))
	if err != nil {
		t.Fatal(err)
	}
	change, _ := chromedp.Run(ctx, chromedp.InnerHTML(chromedp.CSS(`#change`)))
	title, _ := chromedp.Run(ctx, chromedp.Title())
	if !strings.Contains(msg, "fix &lt;script&gt;document.title='owned'&lt;/script&gt;") || !strings.Contains(msg, `<span class="af-red">red</span>`) || title == "owned" {
		t.Errorf("commit message rendered as %q (title %q)", msg, title)
	}
	if !strings.Contains(change, "<td>Eve &amp; Mallory</td>") {
		t.Errorf("author missing or not escaped in %q", change)
	}

	// The build ends when told; the page says so without a reload.
	stop()
	f.waitFinished(30*time.Second, id)
	err = chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Poll[chromedp.Void](`document.getElementById('log-state').textContent.includes('success')`, chromedp.WithPollingTimeout(10*time.Second))(ctx, t)
		return err
	}))
	if err != nil {
		state, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#log-state`)))
		t.Errorf("log state after the build ended: %q (%v)", state, err)
	}
	// /repos is the page; the published repositories live under /repos/.
	for _, page := range []string{"workers", "changes", "builds", "repos"} {
		if err := chromedp.Do(ctx, chromedp.Navigate(f.url("/"+page)), chromedp.WaitVisible(chromedp.CSS(`footer`)), webtest.Screenshot(dir, page+".png")); err != nil {
			t.Errorf("%s page: %v", page, err)
		}
	}
}

// request does one HTTP request with an optional bearer token and returns
// the status, the Location header and the body.
func request(t *testing.T, method, url, token string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), string(b)
}

// TestPagesAndAPIFromRealState checks the grid, the builder list, errors,
// auth and metrics against a real master's state.
func TestPagesAndAPIFromRealState(t *testing.T) {
	f := newFarm(t, farmOpts{})
	res := f.force("liba") // liba, libb and app on two targets; no worker, so all wait
	if len(res.Builds) != 6 {
		t.Fatalf("forced %d builds", len(res.Builds))
	}
	_, _, grid := request(t, "GET", f.url("/"), "")
	for _, id := range res.Builds {
		if !strings.Contains(grid, fmt.Sprintf(`href="/builds/%d"`, id)) {
			t.Errorf("grid has no cell linking to build %d", id)
		}
	}
	var cancelled state.Build
	if code := f.call("POST", "/api/v1/builds/"+itoa(res.Builds[5])+"/cancel", nil, &cancelled); code != http.StatusOK {
		t.Fatalf("cancel: HTTP %d", code)
	}

	for _, tc := range []struct {
		query string
		total int
	}{
		{"", 6},
		{"?status=pending", 5},
		{"?status=cancelled", 1},
		{"?status=never", 0},
		{"?component=app&target=centos/9/x86_64", 1},
		{"?limit=2&offset=1", 6},
	} {
		var list api.BuilderList
		if code := f.call("GET", "/api/v1/builders"+tc.query, nil, &list); code != http.StatusOK || list.Total != tc.total {
			t.Errorf("builders%s: HTTP %d, total %d, want %d", tc.query, code, list.Total, tc.total)
		}
		for _, b := range list.Builders {
			if b.Latest == nil || f.build(b.Latest.ID).Builder != b.Name || f.build(b.Latest.ID).Status != b.Latest.Status {
				t.Errorf("builders%s: %s shows latest %+v", tc.query, b.Name, b.Latest)
			}
		}
	}

	for _, tc := range []struct {
		method, path, token string
		code                int
		mention             string
	}{
		{"GET", "/builds/99999", "", 404, "not found"},
		{"GET", "/builds/x", "", 404, "not found"},
		{"GET", "/builds/99999/log/events", "", 404, "not found"},
		{"GET", "/nothing", "", 404, "no page"},
		{"GET", "/api/v1/builds/99999", "", 404, "not found"},
		{"GET", "/api/v1/builds/99999/steps", "", 404, "not found"},
		{"GET", "/api/v1/builds/99999/log", "", 404, "not found"},
		{"GET", "/api/v1/builds/99999/artifacts/x.deb", "", 404, "not found"},
		{"GET", "/api/v1/requests/99999/explain", "", 404, "not found"},
		{"GET", "/api/v1/nothing", "", 404, "no API route"},
		{"GET", "/?status=bogus", "", 400, "bad query parameter status"},
		{"GET", "/builds?limit=x", "", 400, "bad query parameter limit"},
		{"GET", "/changes?offset=-1", "", 400, "bad query parameter offset"},
		{"GET", "/api/v1/builds?limit=x", "", 400, "limit"},
		{"GET", "/api/v1/builders?status=bogus", "", 400, "status"},
		{"GET", "/api/v1/changes?offset=x", "", 400, "offset"},
		{"GET", "/api/v1/workers?x=1", "", 400, "x"},
		{"POST", "/api/v1/builds/" + itoa(res.Builds[0]) + "/rebuild", "", 401, "needs a user's token"},
		{"POST", "/api/v1/builds/" + itoa(res.Builds[0]) + "/cancel", "wrong", 401, "names no user"},
		{"POST", "/builds/" + itoa(res.Builds[0]) + "/cancel", "", 403, "log in"},
		{"GET", "/api/v1/builds/" + itoa(res.Builds[0]), "", 200, `"status": "pending"`},
		{"GET", "/api/v1/openapi.json", "", 200, `"openapi"`},
	} {
		code, _, body := request(t, tc.method, f.url(tc.path), tc.token)
		if code != tc.code || !strings.Contains(body, tc.mention) {
			t.Errorf("%s %s: HTTP %d, want %d mentioning %q; body %.300q", tc.method, tc.path, code, tc.code, tc.mention, body)
		}
	}
	if b := f.build(res.Builds[0]); b.Status != protocol.StatusPending {
		t.Errorf("refused cancels changed build %d to %s", b.ID, b.Status)
	}

	_, _, metrics := request(t, "GET", f.url("/metrics"), "")
	for _, want := range []string{`kiln_builds_finished_total{result="cancelled"} 1`, "kiln_queue_length 5", "kiln_workers_connected 0", "kiln_dispatch_latency_seconds_count 0"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// TestPrivatePagesNeedAToken: with public_pages false every read needs a
// session or a token, in the pages and the API alike.
func TestPrivatePagesNeedAToken(t *testing.T) {
	f, _, _ := newWebFarm(t, false)
	for _, tc := range []struct {
		path, token string
		code        int
		location    string
	}{
		{"/", "", http.StatusSeeOther, "/login?next=%2F"},
		{"/builds", "", http.StatusSeeOther, "/login?next=%2Fbuilds"},
		{"/login", "", http.StatusOK, ""},
		{"/api/v1/builds", "", http.StatusUnauthorized, ""},
		{"/api/v1/builders", "wrong", http.StatusUnauthorized, ""},
		{"/", opsToken, http.StatusOK, ""},
		{"/api/v1/builds", opsToken, http.StatusOK, ""},
		{"/api/v1/builders", opsToken, http.StatusOK, ""},
	} {
		code, loc, body := request(t, "GET", f.url(tc.path), tc.token)
		if code != tc.code || loc != tc.location {
			t.Errorf("GET %s with token %q: HTTP %d to %q, want %d to %q; %.200q", tc.path, tc.token, code, loc, tc.code, tc.location, body)
		}
	}
}

// TestUsersFollowConfigReload: a user added to the config may act once the
// config is reloaded; one removed may not.
func TestUsersFollowConfigReload(t *testing.T) {
	f := newFarm(t, farmOpts{}, farmtest.File("ci.token", "ci-token"))
	swapped := strings.Replace(farmConfig(farmOpts{}), "  - {name: ops, token: ops.token}", "  - {name: ci, token: ci.token}", 1)
	f.writeConfig(swapped)
	if err := f.m().Reload(context.Background()); err != nil {
		t.Fatalf("reload: %v", err)
	}
	path := f.url("/api/v1/builds/99999/cancel")
	if code, _, body := request(t, "POST", path, "ci-token"); code != http.StatusNotFound {
		t.Errorf("new user ci: HTTP %d %s, want 404 (authorized, no such build)", code, body)
	}
	if code, _, _ := request(t, "POST", path, opsToken); code != http.StatusUnauthorized {
		t.Errorf("removed user ops: HTTP %d, want 401", code)
	}
}
