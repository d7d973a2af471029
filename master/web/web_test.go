package web

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/kiln-build/kiln/internal/kilntest"
)

const (
	testUser     = "ada"
	testPassword = "correct horse"
	testToken    = "tok-0123456789abcdef"
)

var testHash = func() string {
	h, err := bcrypt.GenerateFromPassword([]byte(testPassword), bcrypt.MinCost)
	if err != nil {
		panic(err)
	}
	return string(h)
}()

func testOptions(src *testSource, acts *testActions) Options {
	o := Options{
		Source:      src,
		Users:       []User{{Name: testUser, PasswordHash: testHash, Token: testToken}, {Name: "bot", Token: "bot-token"}},
		PublicPages: true,
		Title:       "Test farm",
		Logger:      kilntest.QuietLogger(),
		Now:         func() time.Time { return testNow },
	}
	// A nil *testActions in the interface would look like actions to New.
	if acts != nil {
		o.Actions = acts
	}
	return o
}

func newTestHandler(t *testing.T) (http.Handler, *testSource, *testActions) {
	t.Helper()
	src := smallFarm()
	acts := &testActions{src: src}
	t.Cleanup(func() { src.wait(t) })
	return New(testOptions(src, acts)), src, acts
}

func get(t *testing.T, h http.Handler, path string, cookies ...*http.Cookie) *httptest.ResponseRecorder {
	t.Helper()
	return serve(h, httptest.NewRequest(http.MethodGet, path, nil), cookies)
}

// serve runs req, with cookies as a browser would send them, through h.
func serve(h http.Handler, req *http.Request, cookies []*http.Cookie) *httptest.ResponseRecorder {
	for _, c := range cookies {
		req.AddCookie(c)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestPages(t *testing.T) {
	h, _, _ := newTestHandler(t)
	tests := []struct {
		name    string
		path    string
		code    int
		want    []string
		notWant []string
	}{
		{"grid", "/", 200, []string{
			`<th class="distro" colspan="3" title="debian">debian</th>`, `<th class="distro" colspan="2" title="centos">centos</th>`,
			`<th class="version" colspan="2" title="debian bookworm">bookworm</th>`,
			`<a class="s-failure" title="opencore@debian/trixie/amd64: failure #6" href="/builds/6">`,
			`<a class="s-running" title="opencore@debian/bookworm/amd64: running #11" href="/builds/11">`,
			`href="?status=success">8 success</a>`, `>1 pending</a>`, `>1 failure</a>`, `>1 running</a>`,
			`kiln-tools@debian/bookworm/amd64: never built" href="/builds?component=kiln-tools&amp;target=debian%2Fbookworm%2Famd64"`,
			"config c0ffee012345",
		}, nil},
		{"grid distro filter", "/?distro=centos", 200, []string{`colspan="2" title="centos">centos</th>`, `<option selected>centos</option>`}, []string{`>debian</th>`, "bookworm</th>"}},
		{"grid distro version arch", "/?distro=debian&version=bookworm&arch=arm64", 200, []string{`title="debian/bookworm/arm64"`, "3 components × 1 targets"}, []string{`title="debian/bookworm/amd64"`}},
		{"grid component substring", "/?component=GRACE", 200, []string{">libgrace</a></th>", "1 components × 5 targets"}, []string{">opencore</a></th>"}},
		{"grid status filter keeps matching rows, dims others", "/?status=failure", 200, []string{">opencore</a></th>", `class="s-success dim"`, `class="s-failure"`}, []string{">libgrace</a></th>"}},
		{"grid filter matches nothing", "/?component=zzz", 200, []string{"No builder matches these filters."}, nil},
		{"grid bad status", "/?status=bogus", 400, []string{"bad query parameter status: unknown status &#34;bogus&#34;"}, nil},
		{"builds", "/builds", 200, []string{`<h2 id="running">Running <small>(1)</small>`, "waiting for libgrace@centos/9/x86_64", `<a href="/builds/11">11</a>`, "10 in all"}, nil},
		{"builds by status", "/builds?status=failure", 200, []string{`<a href="/builds/6">6</a>`, "1 in all"}, []string{`<a href="/builds/5">5</a>`, `id="running"`}},
		{"builds by worker and component", "/builds?worker=w-deb-1&component=libgrace", 200, []string{"5 in all"}, []string{"opencore@"}},
		{"builds pagination", "/builds?limit=3&offset=3", 200, []string{"4–6 of 10", `href="?limit=3&amp;offset=0" rel="prev"`, `href="?limit=3&amp;offset=6" rel="next"`}, nil},
		{"builds bad limit", "/builds?limit=0", 400, []string{"bad query parameter limit: 0 is outside 1..500"}, nil},
		{"builds bad offset", "/builds?offset=x", 400, []string{"bad query parameter offset: &#34;x&#34; is not a whole number"}, nil},
		{"builds bad status", "/builds?status=bogus", 400, []string{"bad query parameter status"}, nil},
		{"build", "/builds/11", 200, []string{
			"Build 11", "<td>checkout</td>", "<td>4s</td>", "building opencore_2.1-1",
			"<th>distribution</th><td><code>bookworm</code></td>",
			`<a href="/api/v1/builds/12/artifacts/opencore_2.1-1.dsc" download>opencore_2.1-1.dsc</a>`, "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "1.2 KiB",
			"Eve &lt;eve@example.org&gt;", "fix parser &lt;script&gt;alert(&#39;msg&#39;)&lt;/script&gt;", "via webhook",
			"worker lost", `data-events="/builds/11/log/events"`,
		}, []string{"<script>alert", "\x1b", `id="force"`}},
		{"build unknown", "/builds/999", 404, []string{"build 999 not found"}, nil},
		{"build bad id", "/builds/abc", 404, []string{"not found"}, nil},
		{"build log unknown", "/builds/999/log/events", 404, nil, nil},
		{"build log bad from", "/builds/11/log/events?from=-1", 400, []string{"bad query parameter from"}, nil},
		{"workers", "/workers", 200, []string{"w-deb-1", "connected", "lost", "1/4", "debian amd64 pbuilder", "3s ago", "10m00s ago"}, nil},
		{"changes", "/changes", 200, []string{"initial import", "<summary>fix parser &lt;script&gt;alert(&#39;msg&#39;)&lt;/script&gt;</summary>", "&lt;b&gt;tags&lt;/b&gt;", "2 in all"}, []string{"<script>alert", "\x1b"}},
		{"changes filtered", "/changes?component=libgrace", 200, []string{"initial import", "1 in all"}, []string{"fix parser"}},
		{"changes pollers", "/changes", 200, []string{
			"Pollers <small>(2)</small>", "<td><code>https://git.example.org/libgrace.git</code></td>",
			`<a href="/changes?component=libgrace">libgrace</a> <a href="/changes?component=kiln-tools">kiln-tools</a>`,
			">20s ago</time>", ">in 40s</time>", ">in 4m00s</time>", "3 in a row, backing off",
			"ls-remote: &lt;script&gt;alert(&#39;poll&#39;)&lt;/script&gt;",
		}, []string{"<script>alert", "no pollers"}},
		{"changes pollers of one component", "/changes?component=opencore", 200, []string{"Pollers <small>(1)</small>", "opencore.git"}, []string{"libgrace.git"}},
		{"changes component nobody polls", "/changes?component=zzz", 200, []string{"no poller watches zzz: its changes arrive by webhook or force"}, nil},
		{"changes bad limit", "/changes?limit=1000", 400, []string{"bad query parameter limit"}, nil},
		{"repos", "/repos", 200, []string{`<h2 id="channel-dev">dev</h2>`, `<h2 id="channel-stable">stable</h2>`, "libgrace1 <code>1.4-2</code>"}, nil},
		{"login form", "/login", 200, []string{`name="csrf"`, `type="password"`}, nil},
		{"unknown path", "/nope", 404, []string{"no page at /nope"}, nil},
		{"static css", "/static/kiln.css", 200, []string{".s-failure"}, nil},
		{"static js", "/static/kiln.js", 200, []string{"EventSource"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := get(t, h, tt.path)
			body := rec.Body.String()
			if rec.Code != tt.code {
				t.Fatalf("GET %s: %d, want %d\n%s", tt.path, rec.Code, tt.code, body)
			}
			for _, w := range tt.want {
				if !strings.Contains(body, w) {
					t.Errorf("GET %s: missing %q", tt.path, w)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(body, w) {
					t.Errorf("GET %s: has %q", tt.path, w)
				}
			}
			if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
				t.Errorf("GET %s: CSP %q", tt.path, csp)
			}
		})
	}
}

func TestConfigErrorBanner(t *testing.T) {
	h, src, _ := newTestHandler(t)
	src.config.Error = `unknown field "onlyy"`
	src.config.File, src.config.Line = "farm.yaml", 42
	body := get(t, h, "/workers").Body.String()
	if !strings.Contains(body, "New configuration refused at <code>farm.yaml:42</code>: unknown field &#34;onlyy&#34;. Running the last good one (c0ffee012345).") {
		t.Errorf("config banner missing:\n%s", body)
	}
}

func TestChangesWithoutPollers(t *testing.T) {
	src := smallFarm()
	src.pollers = nil
	body := get(t, New(testOptions(src, nil)), "/changes").Body.String()
	if !strings.Contains(body, "no pollers: changes arrive by webhook or force") {
		t.Errorf("no empty state in\n%s", body)
	}
}

// The grid's markup is checked whole against a golden file, since its
// structure (spans, sticky headers, cell classes) is what makes it usable.
func TestGridGolden(t *testing.T) {
	h, _, _ := newTestHandler(t)
	kilntest.Golden(t, "testdata/grid.golden.html", get(t, h, "/?arch=amd64").Body.Bytes())
}

// login logs testUser in and returns the session cookie and the CSRF token
// the pages then carry.
func login(t *testing.T, h http.Handler) (*http.Cookie, string) {
	t.Helper()
	return loginAs(t, h, testUser, testPassword)
}

func loginAs(t *testing.T, h http.Handler, user, password string) (*http.Cookie, string) {
	t.Helper()
	page := get(t, h, "/login")
	lc := cookieNamed(page.Result().Cookies(), loginCookie)
	if lc == nil {
		t.Fatal("login page set no CSRF cookie")
	}
	rec := post(t, h, "/login", url.Values{"user": {user}, "password": {password}, "csrf": {lc.Value}, "next": {"/workers"}}, lc)
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/workers" {
		t.Fatalf("login: %d to %q\n%s", rec.Code, rec.Header().Get("Location"), rec.Body)
	}
	sc := cookieNamed(rec.Result().Cookies(), sessionCookie)
	if sc == nil {
		t.Fatal("login set no session cookie")
	}
	return sc, csrfFrom(t, get(t, h, "/builds/11", sc).Body.String())
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfFrom(t *testing.T, body string) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no CSRF field in page:\n%s", body)
	}
	return m[1]
}

func cookieNamed(cs []*http.Cookie, name string) *http.Cookie {
	for _, c := range cs {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func post(t *testing.T, h http.Handler, path string, form url.Values, cookies ...*http.Cookie) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return serve(h, req, cookies)
}

func TestLogin(t *testing.T) {
	h, _, _ := newTestHandler(t)
	lc := cookieNamed(get(t, h, "/login").Result().Cookies(), loginCookie)

	tests := []struct {
		name   string
		form   url.Values
		cookie *http.Cookie
		code   int
		want   string
	}{
		{"wrong password", url.Values{"user": {testUser}, "password": {"nope"}, "csrf": {lc.Value}}, lc, 401, "wrong user name or password"},
		{"unknown user", url.Values{"user": {"mallory"}, "password": {testPassword}, "csrf": {lc.Value}}, lc, 401, "wrong user name or password"},
		{"token-only user cannot log in with a password", url.Values{"user": {"bot"}, "password": {""}, "csrf": {lc.Value}}, lc, 401, "wrong user name or password"},
		{"no csrf cookie", url.Values{"user": {testUser}, "password": {testPassword}, "csrf": {lc.Value}}, nil, 403, "CSRF"},
		{"csrf mismatch", url.Values{"user": {testUser}, "password": {testPassword}, "csrf": {"forged"}}, lc, 403, "CSRF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var cs []*http.Cookie
			if tt.cookie != nil {
				cs = append(cs, tt.cookie)
			}
			rec := post(t, h, "/login", tt.form, cs...)
			if rec.Code != tt.code || !strings.Contains(rec.Body.String(), tt.want) {
				t.Errorf("%d, want %d with %q\n%s", rec.Code, tt.code, tt.want, rec.Body)
			}
			if cookieNamed(rec.Result().Cookies(), sessionCookie) != nil {
				t.Error("a session cookie was set")
			}
		})
	}

	t.Run("success", func(t *testing.T) {
		sc, _ := login(t, h)
		if !sc.HttpOnly || sc.SameSite != http.SameSiteLaxMode || sc.Path != "/" {
			t.Errorf("session cookie %+v: want HttpOnly, SameSite=Lax, Path=/", sc)
		}
		body := get(t, h, "/", sc).Body.String()
		if !strings.Contains(body, `<span id="user">ada</span>`) {
			t.Error("logged-in page does not name the user")
		}
	})

	t.Run("open redirect refused", func(t *testing.T) {
		for _, next := range []string{"//evil.example/", `/\evil.example`, "https://evil.example/"} {
			rec := post(t, h, "/login", url.Values{"user": {testUser}, "password": {testPassword}, "csrf": {lc.Value}, "next": {next}}, lc)
			if loc := rec.Header().Get("Location"); loc != "/" {
				t.Errorf("next=%q redirected to %q", next, loc)
			}
		}
	})

	t.Run("tampered or foreign session", func(t *testing.T) {
		sc, _ := login(t, h)
		other, _, _ := newTestHandler(t)
		forged := *sc
		forged.Value = strings.Replace(sc.Value, ".", "x.", 1)
		for name, hh := range map[string]http.Handler{"tampered": h, "other process": other} {
			c := sc
			if name == "tampered" {
				c = &forged
			}
			if strings.Contains(get(t, hh, "/", c).Body.String(), `id="user"`) {
				t.Errorf("%s cookie accepted", name)
			}
		}
	})

	t.Run("logout", func(t *testing.T) {
		sc, csrf := login(t, h)
		if rec := post(t, h, "/logout", url.Values{}, sc); rec.Code != 403 {
			t.Errorf("logout without CSRF: %d, want 403", rec.Code)
		}
		rec := post(t, h, "/logout", url.Values{"csrf": {csrf}}, sc)
		c := cookieNamed(rec.Result().Cookies(), sessionCookie)
		if rec.Code != http.StatusSeeOther || c == nil || c.MaxAge >= 0 {
			t.Errorf("logout: %d, cookie %+v; want 303 and the cookie deleted", rec.Code, c)
		}
	})
}

// docs/web.md tells operators to make hashes with htpasswd, which writes the
// $2y$ variant; this one came from `htpasswd -nBC 5 ""` (cost 5 keeps the test fast).
func TestHtpasswdHash(t *testing.T) {
	src := smallFarm()
	o := testOptions(src, nil)
	o.Users = []User{{Name: "carol", PasswordHash: "$2y$05$XnZ3LHUcCBnrFqF86LrS/OG5k.ok92tws1x/aY2RZV1OZ7RU5iopi"}}
	h := New(o)
	sc, _ := loginAs(t, h, "carol", "correct horse")
	if !strings.Contains(get(t, h, "/", sc).Body.String(), `<span id="user">carol</span>`) {
		t.Error("htpasswd-made hash did not log carol in")
	}
}

func TestActions(t *testing.T) {
	h, _, acts := newTestHandler(t)
	sc, csrf := login(t, h)
	_, otherCSRF := func() (*http.Cookie, string) { return login(t, h) }()

	tests := []struct {
		name   string
		path   string
		form   url.Values
		cookie *http.Cookie
		bearer string
		code   int
		call   *actionCall
	}{
		{"anonymous force", "/force", url.Values{"component": {"opencore"}}, nil, "", 403, nil},
		{"anonymous cancel", "/builds/11/cancel", nil, nil, "", 403, nil},
		{"force without csrf", "/force", url.Values{"component": {"opencore"}}, sc, "", 403, nil},
		{"force with wrong csrf", "/force", url.Values{"component": {"opencore"}, "csrf": {"x" + csrf}}, sc, "", 403, nil},
		{"force with another session's csrf", "/force", url.Values{"component": {"opencore"}, "csrf": {otherCSRF}}, sc, "", 403, nil},
		{"force with a wrong token", "/force", url.Values{"component": {"opencore"}}, nil, "nope", 403, nil},
		{"force", "/force", url.Values{"component": {"opencore"}, "target": {"debian/trixie/amd64"}, "revision": {"abc123"}, "csrf": {csrf}}, sc, "", 303,
			&actionCall{Op: "force", User: "ada", Component: "opencore", Target: "debian/trixie/amd64", Rev: "abc123"}},
		{"force empty component", "/force", url.Values{"component": {" "}, "csrf": {csrf}}, sc, "", 400, nil},
		{"force unknown component", "/force", url.Values{"component": {"nosuch"}, "csrf": {csrf}}, sc, "", 404, nil},
		{"force by token needs no csrf", "/force", url.Values{"component": {"libgrace"}}, nil, "bot-token", 303,
			&actionCall{Op: "force", User: "bot", Component: "libgrace"}},
		{"rebuild", "/builds/6/rebuild", url.Values{"csrf": {csrf}}, sc, "", 303, &actionCall{Op: "rebuild", User: "ada", Build: 6}},
		{"rebuild unknown", "/builds/999/rebuild", url.Values{"csrf": {csrf}}, sc, "", 404, nil},
		{"cancel finished", "/builds/6/cancel", url.Values{"csrf": {csrf}}, sc, "", 400, nil},
		{"cancel", "/builds/11/cancel", url.Values{"csrf": {csrf}}, sc, "", 303, &actionCall{Op: "cancel", User: "ada", Build: 11}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(acts.seen())
			req := httptest.NewRequest(http.MethodPost, tt.path, strings.NewReader(tt.form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if tt.cookie != nil {
				req.AddCookie(tt.cookie)
			}
			if tt.bearer != "" {
				req.Header.Set("Authorization", "Bearer "+tt.bearer)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.code {
				t.Fatalf("POST %s: %d, want %d\n%s", tt.path, rec.Code, tt.code, rec.Body)
			}
			calls := acts.seen()[before:]
			switch {
			case tt.call == nil && len(calls) > 0:
				t.Errorf("refused request still reached Actions: %+v", calls)
			case tt.call != nil && (len(calls) != 1 || calls[0] != *tt.call):
				t.Errorf("Actions saw %+v, want %+v", calls, *tt.call)
			}
		})
	}

	// A force of one builder lands on the new build's page.
	rec := post(t, h, "/force", url.Values{"component": {"opencore"}, "target": {"debian/bookworm/amd64"}, "csrf": {csrf}}, sc)
	if loc := rec.Header().Get("Location"); !regexp.MustCompile(`^/builds/\d+$`).MatchString(loc) {
		t.Errorf("force redirected to %q, want the build page", loc)
	} else if c := get(t, h, loc).Code; c != 200 {
		t.Errorf("GET %s after force: %d", loc, c)
	}
}

func TestActionFormsOnlyForUsers(t *testing.T) {
	h, _, _ := newTestHandler(t)
	for _, path := range []string{"/", "/builds/11"} {
		if body := get(t, h, path).Body.String(); strings.Contains(body, `action="/force"`) || strings.Contains(body, `name="csrf"`) {
			t.Errorf("anonymous visitor sees action forms on %s", path)
		}
	}
	sc, _ := login(t, h)
	body := get(t, h, "/builds/11", sc).Body.String()
	for _, w := range []string{`action="/force"`, `action="/builds/11/rebuild"`, `action="/builds/11/cancel"`} {
		if !strings.Contains(body, w) {
			t.Errorf("logged-in page lacks %s", w)
		}
	}
	if body := get(t, h, "/", sc).Body.String(); !strings.Contains(body, `id="grid-force"`) || !strings.Contains(body, "<option>kiln-tools</option>") {
		t.Error("logged-in grid lacks the force form")
	}
	if body := get(t, h, "/builds/6", sc).Body.String(); strings.Contains(body, `action="/builds/6/cancel"`) {
		t.Error("finished build offers cancel")
	}
}

func TestPrivatePages(t *testing.T) {
	src := smallFarm()
	o := testOptions(src, &testActions{src: src})
	o.PublicPages = false
	h := New(o)

	tests := []struct {
		name, method, path, bearer string
		code                       int
		location                   string
	}{
		{"grid redirects to login", "GET", "/builds?status=running", "", 303, "/login?next=%2Fbuilds%3Fstatus%3Drunning"},
		{"log stream refused", "GET", "/builds/11/log/events", "", 303, "/login?next=%2Fbuilds%2F11%2Flog%2Fevents"},
		{"login page open", "GET", "/login", "", 200, ""},
		{"assets open", "GET", "/static/kiln.css", "", 200, ""},
		{"token reads", "GET", "/workers", testToken, 200, ""},
		{"wrong token", "GET", "/workers", "wrong", 401, ""},
		{"anonymous post", "POST", "/force", "", 401, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, tt.path, nil)
			if tt.bearer != "" {
				req.Header.Set("Authorization", "Bearer "+tt.bearer)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.code || rec.Header().Get("Location") != tt.location {
				t.Errorf("%s %s: %d to %q, want %d to %q", tt.method, tt.path, rec.Code, rec.Header().Get("Location"), tt.code, tt.location)
			}
		})
	}
	sc, _ := login(t, h)
	if rec := get(t, h, "/", sc); rec.Code != 200 {
		t.Errorf("logged-in grid: %d", rec.Code)
	}
}

// brokenSource fails or misbehaves where the master's state could.
type brokenSource struct {
	*testSource
	grid Grid
	err  error
}

func (b brokenSource) Grid(ctx context.Context) (Grid, error) { return b.grid, b.err }

func TestSourceFailures(t *testing.T) {
	tests := []struct {
		name string
		src  brokenSource
	}{
		{"grid error", brokenSource{testSource: smallFarm(), err: errors.New("raft: secret internal detail")}},
		{"row shorter than targets", brokenSource{testSource: smallFarm(), grid: Grid{Targets: []Target{{"debian", "sid", "amd64"}}, Rows: []GridRow{{Component: "x"}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := testOptions(tt.src.testSource, nil)
			o.Source = tt.src
			rec := get(t, New(o), "/")
			if rec.Code != 500 || !strings.Contains(rec.Body.String(), "could not read the grid") {
				t.Errorf("%d\n%s", rec.Code, rec.Body)
			}
			if strings.Contains(rec.Body.String(), "secret") {
				t.Error("internal error text shown to the visitor")
			}
		})
	}
}

// The running and pending sections are capped but say how many there are.
func TestBuildsSectionsCapped(t *testing.T) {
	src := largeFarm(1000)
	for range liveCap + 5 {
		src.addBuild(BuildDetail{BuildSummary: BuildSummary{Component: "component-01", Target: "debian/sid/amd64", Status: StatusPending, Waiting: "no worker"}})
	}
	body := get(t, New(testOptions(src, nil)), "/builds").Body.String()
	for _, w := range []string{"Running <small>(40)</small>", "Pending <small>(205, newest 200 shown)</small>"} {
		if !strings.Contains(body, w) {
			t.Errorf("missing %q", w)
		}
	}
}
