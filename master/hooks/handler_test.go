package hooks

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kiln-build/kiln/internal/kilntest"
)

var testNow = time.Date(2026, 11, 22, 3, 30, 0, 0, time.UTC)

var testComponents = []Component{
	{Name: "opencore", Repo: "git@github.com:kiln-build/opencore.git", Branches: []string{"main", "release/*"}},
	{Name: "opencore-ci", Repo: "https://GitHub.com/kiln-build/opencore/"},
	{Name: "opencore-docs", Repo: "https://github.com/kiln-build/opencore", Branches: []string{"docs"}},
	{Name: "libgrace", Repo: "ssh://git@github.com/kiln-build/libgrace.git"},
	{Name: "widget", Repo: "https://git.example.org/farm/widget"},
	{Name: "pkgtool", Repo: "git@gitlab.example.com:farm/pkgtool.git", Branches: []string{"main"}},
	{Name: "bbtool", Repo: "git@bitbucket.org:farmteam/bbtool.git"},
	{Name: "legacy", Repo: "ssh://hg-mirror.example.net:2200/farm/legacy"},
	{Name: ConfigComponent, Repo: "https://github.com/kiln-build/farm-config.git", Branches: []string{"main"}},
}

var testSecrets = map[string]string{
	"github":    "gh-s3cret",
	"gitea":     "gt-s3cret",
	"forgejo":   "gt-s3cret",
	"gitlab":    "gl-t0ken",
	"bitbucket": "bb-s3cret",
	"generic":   "kiln-s3cret",
}

func testConfig() Config {
	return Config{
		GitHub:    ProviderConfig{Secret: testSecrets["github"]},
		Gitea:     ProviderConfig{Secret: testSecrets["gitea"]},
		GitLab:    ProviderConfig{Secret: testSecrets["gitlab"]},
		Bitbucket: ProviderConfig{Secret: testSecrets["bitbucket"]},
		Generic:   ProviderConfig{Secret: testSecrets["generic"]},
	}
}

// sign computes each provider's proof independently of verify, following
// the providers' documentation, so a bug in verify cannot hide here.
func sign(style, secret string, body []byte, h http.Header) {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	sum := hex.EncodeToString(mac.Sum(nil))
	switch style {
	case "github":
		h.Set("X-Hub-Signature-256", "sha256="+sum)
	case "gitea":
		h.Set("X-Gitea-Signature", sum)
	case "forgejo":
		h.Set("X-Forgejo-Signature", sum)
	case "gitlab":
		h.Set("X-Gitlab-Token", secret)
	case "bitbucket":
		h.Set("X-Hub-Signature", "sha256="+sum)
	case "generic":
		h.Set("X-Kiln-Signature", "sha256="+sum)
	default:
		panic("unknown signature style " + style)
	}
}

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// recorder is a sink that remembers what it accepted.
type recorder struct {
	mu      sync.Mutex
	changes []Change
	err     error
}

func (r *recorder) sink(_ context.Context, c Change) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	r.changes = append(r.changes, c)
	return nil
}

func (r *recorder) got() []Change {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Change(nil), r.changes...)
}

type notified struct{ repo, ref, rev string }

func newTestHandler(t testing.TB, cfg Config, rec *recorder, notes *[]notified) *Handler {
	t.Helper()
	var mu sync.Mutex
	h, err := New(Options{
		Config:     cfg,
		Components: testComponents,
		Sink:       rec.sink,
		Notify: func(repo, ref, rev string) {
			if notes != nil {
				mu.Lock()
				*notes = append(*notes, notified{repo, ref, rev})
				mu.Unlock()
			}
		},
		Logger: kilntest.QuietLogger(),
		Now:    func() time.Time { return testNow },
	})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

type request struct {
	method  string
	path    string
	body    []byte
	headers map[string]string
	signAs  string // signature style; empty leaves the request unsigned
	secret  string // defaults to the style's configured secret
}

func (q request) do(h http.Handler) *httptest.ResponseRecorder {
	method := q.method
	if method == "" {
		method = http.MethodPost
	}
	r := httptest.NewRequest(method, "/hooks/"+q.path, bytes.NewReader(q.body))
	r.Header.Set("Content-Type", "application/json")
	for k, v := range q.headers {
		r.Header.Set(k, v)
	}
	if q.signAs != "" {
		secret := q.secret
		if secret == "" {
			secret = testSecrets[q.signAs]
		}
		sign(q.signAs, secret, q.body, r.Header)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func ghHeaders(event, delivery string) map[string]string {
	return map[string]string{"X-GitHub-Event": event, "X-GitHub-Delivery": delivery}
}

func webhook(provider, delivery, user string) Source {
	return Source{Kind: KindWebhook, Provider: provider, Delivery: delivery, User: user}
}

func TestProviders(t *testing.T) {
	const (
		ocRev   = "9a0c3e3f0b1f5e7d2c4a6b8d0e2f4a6c8e0b2d4f"
		bbRev   = "f7e8d9c0b1a2f3e4d5c6b7a8f9e0d1c2b3a4f5e6"
		ghDel   = "72d3162e-cc78-11e3-81ab-4c9367dc0958"
		gtDel   = "f6266f16-1bf3-46a5-9ea4-602e06ead473"
		glDel   = "e8f2a7c4-6b1d-4f3e-9a0b-1c2d3e4f5a6b"
		bbDel   = "9e3c0a71-5b2d-4c8e-a1f0-7d6e5c4b3a29"
		ocRepo  = "git@github.com:kiln-build/opencore.git"
		ciRepo  = "https://GitHub.com/kiln-build/opencore/"
		glRepo  = "git@gitlab.example.com:farm/pkgtool.git"
		bbRepo  = "git@bitbucket.org:farmteam/bbtool.git"
		cfgRepo = "https://github.com/kiln-build/farm-config.git"
	)
	gitea := map[string]string{"X-Gitea-Event": "push", "X-Gitea-Delivery": gtDel, "X-GitHub-Event": "push"}
	forgejo := map[string]string{"X-Forgejo-Event": "push", "X-Forgejo-Delivery": gtDel}
	gitlab := func(event string) map[string]string {
		return map[string]string{"X-Gitlab-Event": event, "Idempotency-Key": glDel, "X-Gitlab-Event-UUID": "other-uuid"}
	}
	bitbucket := func(event string) map[string]string {
		return map[string]string{"X-Event-Key": event, "X-Request-UUID": bbDel, "X-Hook-UUID": "hook-uuid-same-for-all"}
	}
	form := url.Values{"payload": {string(fixture(t, "github_push.json"))}}.Encode()

	tests := []struct {
		name       string
		req        request
		wantStatus int
		wantBody   string
		want       []Change
	}{
		{
			name:       "github push to a repo shared by components",
			req:        request{path: "github", body: fixture(t, "github_push.json"), headers: ghHeaders("push", ghDel), signAs: "github"},
			wantStatus: http.StatusOK,
			wantBody:   "accepted: 2 change(s)",
			want: []Change{
				{Component: "opencore", RepoURL: ocRepo, Branch: "main", Revision: ocRev, Source: webhook("github", ghDel, "ada"), Time: testNow},
				{Component: "opencore-ci", RepoURL: ciRepo, Branch: "main", Revision: ocRev, Source: webhook("github", ghDel, "ada"), Time: testNow},
			},
		},
		{
			name:       "github annotated tag builds the tagged commit",
			req:        request{path: "github", body: fixture(t, "github_tag.json"), headers: ghHeaders("push", "d1"), signAs: "github"},
			wantStatus: http.StatusOK,
			want: []Change{{Component: "libgrace", RepoURL: "ssh://git@github.com/kiln-build/libgrace.git", Tag: "v2.1.0",
				Revision: "3b18e512dba79e4c8300dd08aeb37f8e728b8dad", Source: webhook("github", "d1", "bo"), Time: testNow}},
		},
		{
			name:       "github form-encoded push",
			req:        request{path: "github", body: []byte(form), headers: map[string]string{"X-GitHub-Event": "push", "X-GitHub-Delivery": "d2", "Content-Type": "application/x-www-form-urlencoded"}, signAs: "github"},
			wantStatus: http.StatusOK,
			wantBody:   "accepted: 2 change(s)",
			want: []Change{
				{Component: "opencore", RepoURL: ocRepo, Branch: "main", Revision: ocRev, Source: webhook("github", "d2", "ada"), Time: testNow},
				{Component: "opencore-ci", RepoURL: ciRepo, Branch: "main", Revision: ocRev, Source: webhook("github", "d2", "ada"), Time: testNow},
			},
		},
		{
			name:       "github branch deletion is ignored",
			req:        request{path: "github", body: fixture(t, "github_delete.json"), headers: ghHeaders("push", "d3"), signAs: "github"},
			wantStatus: http.StatusAccepted,
			wantBody:   "ignored: github.com/kiln-build/opencore refs/heads/release/2.0 deleted",
		},
		{
			name:       "github ping",
			req:        request{path: "github", body: fixture(t, "github_ping.json"), headers: ghHeaders("ping", "d4"), signAs: "github"},
			wantStatus: http.StatusOK,
			wantBody:   "pong",
		},
		{
			name:       "github unknown repository",
			req:        request{path: "github", body: fixture(t, "github_unknown_repo.json"), headers: ghHeaders("push", "d5"), signAs: "github"},
			wantStatus: http.StatusAccepted,
			wantBody:   "ignored: unknown repository https://github.com/ada/dotfiles.git",
		},
		{
			name:       "github event kiln does not handle",
			req:        request{path: "github", body: []byte(`{"action":"opened"}`), headers: ghHeaders("issues", "d6"), signAs: "github"},
			wantStatus: http.StatusAccepted,
			wantBody:   `ignored: event not handled: "issues"`,
		},
		{
			name:       "github wrong secret",
			req:        request{path: "github", body: fixture(t, "github_push.json"), headers: ghHeaders("push", "d7"), signAs: "github", secret: "guess"},
			wantStatus: http.StatusUnauthorized,
			wantBody:   "signature does not match",
		},
		{
			name:       "github unsigned",
			req:        request{path: "github", body: fixture(t, "github_push.json"), headers: ghHeaders("push", "d8")},
			wantStatus: http.StatusUnauthorized,
			wantBody:   "not signed",
		},
		{
			name: "github SHA-1 signature only is unsigned",
			req: request{path: "github", body: fixture(t, "github_push.json"), headers: map[string]string{
				"X-GitHub-Event": "push", "X-Hub-Signature": "sha1=0123456789abcdef0123456789abcdef01234567"}},
			wantStatus: http.StatusUnauthorized,
			wantBody:   "not signed",
		},
		{
			name: "github signature without prefix",
			req: request{path: "github", body: fixture(t, "github_push.json"), headers: map[string]string{
				"X-GitHub-Event": "push", "X-Hub-Signature-256": strings.Repeat("ab", 32)}},
			wantStatus: http.StatusUnauthorized,
			wantBody:   `want "sha256=" prefix`,
		},
		{
			name:       "github ping with a wrong signature is refused too",
			req:        request{path: "github", body: fixture(t, "github_ping.json"), headers: ghHeaders("ping", "d9"), signAs: "github", secret: "guess"},
			wantStatus: http.StatusUnauthorized,
		},
		{
			name:       "github missing event header",
			req:        request{path: "github", body: fixture(t, "github_push.json"), signAs: "github"},
			wantStatus: http.StatusBadRequest,
			wantBody:   "missing X-GitHub-Event header",
		},
		{
			name:       "github truncated JSON",
			req:        request{path: "github", body: fixture(t, "github_push.json")[:200], headers: ghHeaders("push", "d10"), signAs: "github"},
			wantStatus: http.StatusBadRequest,
			wantBody:   "github push: malformed payload: invalid JSON",
		},
		{
			name:       "github wrongly typed field",
			req:        request{path: "github", body: []byte(`{"ref": 7, "after": "x"}`), headers: ghHeaders("push", "d11"), signAs: "github"},
			wantStatus: http.StatusBadRequest,
			wantBody:   "field ref: want string, got JSON number",
		},
		{
			name:       "github bad commit id",
			req:        request{path: "github", body: []byte(`{"ref":"refs/heads/main","after":"HEAD","repository":{"clone_url":"https://github.com/kiln-build/opencore.git"}}`), headers: ghHeaders("push", "d12"), signAs: "github"},
			wantStatus: http.StatusBadRequest,
			wantBody:   `after "HEAD": want a 40 or 64 hex digit object id`,
		},
		{
			name:       "github empty body",
			req:        request{path: "github", headers: ghHeaders("push", "d13"), signAs: "github"},
			wantStatus: http.StatusBadRequest,
			wantBody:   "empty body",
		},
		{
			name:       "github wrong method",
			req:        request{method: http.MethodGet, path: "github"},
			wantStatus: http.StatusMethodNotAllowed,
		},
		{
			name:       "unknown provider",
			req:        request{path: "sourcehut", body: []byte("{}")},
			wantStatus: http.StatusNotFound,
		},
		{
			name:       "config repository through the github endpoint",
			req:        request{path: "github", body: fixture(t, "github_config.json"), headers: ghHeaders("push", "d14"), signAs: "github"},
			wantStatus: http.StatusOK,
			want: []Change{{Component: ConfigComponent, RepoURL: cfgRepo, Branch: "main",
				Revision: "5555555555555555555555555555555555555555", Source: webhook("github", "d14", "ops"), Time: testNow}},
		},
		{
			name:       "config endpoint detects github",
			req:        request{path: "config", body: fixture(t, "github_config.json"), headers: ghHeaders("push", "d15"), signAs: "github"},
			wantStatus: http.StatusOK,
			want: []Change{{Component: ConfigComponent, RepoURL: cfgRepo, Branch: "main",
				Revision: "5555555555555555555555555555555555555555", Source: webhook("github", "d15", "ops"), Time: testNow}},
		},
		{
			name:       "config endpoint refuses other repositories",
			req:        request{path: "config", body: fixture(t, "github_push.json"), headers: ghHeaders("push", "d16"), signAs: "github"},
			wantStatus: http.StatusAccepted,
			wantBody:   "ignored: not the config repository",
		},
		{
			name:       "config endpoint checks the detected provider's secret",
			req:        request{path: "config", body: fixture(t, "github_config.json"), headers: ghHeaders("push", "d17"), signAs: "github", secret: testSecrets["gitlab"]},
			wantStatus: http.StatusUnauthorized,
		},
		{
			name:       "config endpoint detects gitlab",
			req:        request{path: "config", body: fixture(t, "gitlab_push.json"), headers: gitlab("Push Hook"), signAs: "gitlab"},
			wantStatus: http.StatusAccepted,
			wantBody:   "ignored: not the config repository https://gitlab.example.com/farm/pkgtool.git",
		},
		{
			name:       "config endpoint detects gitea before github",
			req:        request{path: "config", body: fixture(t, "gitea_push.json"), headers: gitea, signAs: "gitea"},
			wantStatus: http.StatusAccepted,
			wantBody:   "ignored: not the config repository",
		},
		{
			name:       "config endpoint falls back to generic",
			req:        request{path: "config", body: fixture(t, "generic_push.json"), signAs: "generic"},
			wantStatus: http.StatusAccepted,
			wantBody:   "ignored: not the config repository",
		},
		{
			name:       "gitea push to the default branch",
			req:        request{path: "gitea", body: fixture(t, "gitea_push.json"), headers: gitea, signAs: "gitea"},
			wantStatus: http.StatusOK,
			want: []Change{{Component: "widget", RepoURL: "https://git.example.org/farm/widget", Branch: "develop",
				Revision: "bffeb74224043ba2feb48d137756c8a9331c449a", Source: webhook("gitea", gtDel, "cy"), Time: testNow}},
		},
		{
			name:       "forgejo headers",
			req:        request{path: "gitea", body: fixture(t, "gitea_push.json"), headers: forgejo, signAs: "forgejo"},
			wantStatus: http.StatusOK,
			want: []Change{{Component: "widget", RepoURL: "https://git.example.org/farm/widget", Branch: "develop",
				Revision: "bffeb74224043ba2feb48d137756c8a9331c449a", Source: webhook("gitea", gtDel, "cy"), Time: testNow}},
		},
		{
			name:       "gitea signed the GitHub way is refused",
			req:        request{path: "gitea", body: fixture(t, "gitea_push.json"), headers: map[string]string{"X-Gitea-Event": "push", "X-Gitea-Signature": "sha256=" + strings.Repeat("0", 64)}},
			wantStatus: http.StatusUnauthorized,
			wantBody:   "not hex",
		},
		{
			name:       "gitea wrong secret",
			req:        request{path: "gitea", body: fixture(t, "gitea_push.json"), headers: gitea, signAs: "gitea", secret: testSecrets["github"]},
			wantStatus: http.StatusUnauthorized,
		},
		{
			name:       "gitea create event",
			req:        request{path: "gitea", body: []byte(`{"ref":"v1","ref_type":"tag"}`), headers: map[string]string{"X-Gitea-Event": "create"}, signAs: "gitea"},
			wantStatus: http.StatusAccepted,
			wantBody:   "ignored",
		},
		{
			name:       "gitlab push",
			req:        request{path: "gitlab", body: fixture(t, "gitlab_push.json"), headers: gitlab("Push Hook"), signAs: "gitlab"},
			wantStatus: http.StatusOK,
			want: []Change{{Component: "pkgtool", RepoURL: glRepo, Branch: "main",
				Revision: "da1560886d4f094c3e6c9ef40349f7d38b5d27d7", Source: webhook("gitlab", glDel, "dee"), Time: testNow}},
		},
		{
			name:       "gitlab tag push builds checkout_sha",
			req:        request{path: "gitlab", body: fixture(t, "gitlab_tag.json"), headers: gitlab("Tag Push Hook"), signAs: "gitlab"},
			wantStatus: http.StatusOK,
			want: []Change{{Component: "pkgtool", RepoURL: glRepo, Tag: "v1.4.0",
				Revision: "5937ac0a7beb003549fc5fd26fc247adbce4a52e", Source: webhook("gitlab", glDel, "dee"), Time: testNow}},
		},
		{
			name:       "gitlab branch deletion",
			req:        request{path: "gitlab", body: fixture(t, "gitlab_delete.json"), headers: gitlab("Push Hook"), signAs: "gitlab"},
			wantStatus: http.StatusAccepted,
			wantBody:   "deleted",
		},
		{
			name:       "gitlab wrong token",
			req:        request{path: "gitlab", body: fixture(t, "gitlab_push.json"), headers: gitlab("Push Hook"), signAs: "gitlab", secret: "gl-t0ke"},
			wantStatus: http.StatusUnauthorized,
			wantBody:   "wrong token",
		},
		{
			name:       "gitlab without token",
			req:        request{path: "gitlab", body: fixture(t, "gitlab_push.json"), headers: gitlab("Push Hook")},
			wantStatus: http.StatusUnauthorized,
			wantBody:   "want header X-Gitlab-Token",
		},
		{
			name:       "bitbucket push with a branch, a tag and a deletion",
			req:        request{path: "bitbucket", body: fixture(t, "bitbucket_push.json"), headers: bitbucket("repo:push"), signAs: "bitbucket"},
			wantStatus: http.StatusOK,
			wantBody:   "accepted: 2 change(s): bbtool@main, bbtool@v3.0.0",
			want: []Change{
				{Component: "bbtool", RepoURL: bbRepo, Branch: "main", Revision: bbRev, Source: webhook("bitbucket", bbDel, "eve"), Time: testNow},
				{Component: "bbtool", RepoURL: bbRepo, Tag: "v3.0.0", Revision: bbRev, Source: webhook("bitbucket", bbDel, "eve"), Time: testNow},
			},
		},
		{
			name:       "bitbucket ping",
			req:        request{path: "bitbucket", body: []byte(`{"test":true}`), headers: bitbucket("diagnostics:ping"), signAs: "bitbucket"},
			wantStatus: http.StatusOK,
			wantBody:   "pong",
		},
		{
			name:       "bitbucket wrong secret",
			req:        request{path: "bitbucket", body: fixture(t, "bitbucket_push.json"), headers: bitbucket("repo:push"), signAs: "bitbucket", secret: "nope"},
			wantStatus: http.StatusUnauthorized,
		},
		{
			name:       "bitbucket without changes",
			req:        request{path: "bitbucket", body: []byte(`{"repository":{"full_name":"farmteam/bbtool"},"push":{"changes":[]}}`), headers: bitbucket("repo:push"), signAs: "bitbucket"},
			wantStatus: http.StatusBadRequest,
			wantBody:   "push.changes is empty",
		},
		{
			name:       "generic push",
			req:        request{path: "generic", body: fixture(t, "generic_push.json"), signAs: "generic"},
			wantStatus: http.StatusOK,
			want: []Change{{Component: "legacy", RepoURL: "ssh://hg-mirror.example.net:2200/farm/legacy", Branch: "master",
				Revision: strings.Repeat("b", 40), Source: webhook("generic", "mirror-7f3a-0001", "mirror-bot"), Time: testNow}},
		},
		{
			name:       "generic ping",
			req:        request{path: "generic", body: []byte(`{}`), headers: map[string]string{"X-Kiln-Event": "ping"}, signAs: "generic"},
			wantStatus: http.StatusOK,
			wantBody:   "pong",
		},
		{
			name:       "generic bare branch name",
			req:        request{path: "generic", body: []byte(`{"repository":"https://hg-mirror.example.net/farm/legacy","ref":"master","after":"` + strings.Repeat("c", 40) + `"}`), signAs: "generic"},
			wantStatus: http.StatusBadRequest,
			wantBody:   `ref "master": want refs/heads/NAME or refs/tags/NAME`,
		},
		{
			name:       "generic missing repository",
			req:        request{path: "generic", body: []byte(`{"ref":"refs/heads/master","after":"` + strings.Repeat("c", 40) + `"}`), signAs: "generic"},
			wantStatus: http.StatusBadRequest,
			wantBody:   "no repository URL",
		},
		{
			name:       "generic JSON array",
			req:        request{path: "generic", body: []byte(`[1,2]`), signAs: "generic"},
			wantStatus: http.StatusBadRequest,
			wantBody:   "want a JSON hooks.GenericPush, got JSON array",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			h := newTestHandler(t, testConfig(), rec, nil)
			w := tt.req.do(h)
			if w.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d; body %q", w.Code, tt.wantStatus, w.Body)
			}
			if !strings.Contains(w.Body.String(), tt.wantBody) {
				t.Errorf("body %q, want it to contain %q", w.Body, tt.wantBody)
			}
			if tt.wantStatus == http.StatusMethodNotAllowed && w.Header().Get("Allow") != http.MethodPost {
				t.Errorf("405 without Allow: POST")
			}
			if got := rec.got(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("changes:\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestUnsignedPolicy(t *testing.T) {
	body := fixture(t, "gitlab_push.json")
	headers := map[string]string{"X-Gitlab-Event": "Push Hook"}
	tests := []struct {
		name       string
		cfg        ProviderConfig
		signAs     string
		secret     string
		wantStatus int
		wantBody   string
	}{
		{"refused by default", ProviderConfig{Secret: "t"}, "", "", http.StatusUnauthorized, "not signed"},
		{"no secret configured", ProviderConfig{}, "gitlab", "anything", http.StatusUnauthorized, "no secret configured"},
		{"allowed unsigned", ProviderConfig{AllowUnsigned: true}, "", "", http.StatusOK, "accepted"},
		{"allowed unsigned, no secret, token sent", ProviderConfig{AllowUnsigned: true}, "gitlab", "whatever", http.StatusOK, "accepted"},
		{"allowed unsigned still checks a token it can", ProviderConfig{Secret: "t", AllowUnsigned: true}, "gitlab", "wrong", http.StatusUnauthorized, "wrong token"},
		{"allowed unsigned, right token", ProviderConfig{Secret: "t", AllowUnsigned: true}, "gitlab", "t", http.StatusOK, "accepted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			h := newTestHandler(t, Config{GitLab: tt.cfg}, rec, nil)
			w := request{path: "gitlab", body: body, headers: headers, signAs: tt.signAs, secret: tt.secret}.do(h)
			if w.Code != tt.wantStatus || !strings.Contains(w.Body.String(), tt.wantBody) {
				t.Fatalf("got %d %q, want %d containing %q", w.Code, w.Body, tt.wantStatus, tt.wantBody)
			}
			if accepted := len(rec.got()) > 0; accepted != (tt.wantStatus == http.StatusOK) {
				t.Errorf("sink called: %v, status %d", accepted, w.Code)
			}
		})
	}
}

func TestBodyLimit(t *testing.T) {
	cfg := testConfig()
	cfg.MaxBody = 1024
	big := append(fixture(t, "github_push.json"), bytes.Repeat([]byte(" "), 2048)...)
	tests := []struct {
		name          string
		contentLength int64
	}{
		{"declared length", int64(len(big))},
		{"chunked, no length", -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			h := newTestHandler(t, cfg, rec, nil)
			r := httptest.NewRequest(http.MethodPost, "/hooks/github", bytes.NewReader(big))
			r.ContentLength = tt.contentLength
			r.Header.Set("X-GitHub-Event", "push")
			sign("github", testSecrets["github"], big, r.Header)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != http.StatusRequestEntityTooLarge {
				t.Fatalf("status %d, want 413: %q", w.Code, w.Body)
			}
			if len(rec.got()) != 0 {
				t.Error("sink called for an oversized body")
			}
		})
	}
	t.Run("default is 1 MiB", func(t *testing.T) {
		rec := &recorder{}
		h := newTestHandler(t, testConfig(), rec, nil)
		body := append(fixture(t, "github_push.json"), bytes.Repeat([]byte(" "), DefaultMaxBody)...)
		w := request{path: "github", body: body, headers: ghHeaders("push", "x"), signAs: "github"}.do(h)
		if w.Code != http.StatusRequestEntityTooLarge {
			t.Fatalf("status %d, want 413", w.Code)
		}
	})
}

func TestDuplicateDelivery(t *testing.T) {
	body := fixture(t, "github_push.json")
	tests := []struct {
		name        string
		deliveries  []string // one request each, same body
		wantChanges int      // opencore and opencore-ci per accepted delivery
		wantLast    string
	}{
		{"same id twice", []string{"a", "a"}, 2, "duplicate"},
		{"different ids", []string{"a", "b"}, 4, "accepted"},
		{"no id: the body is the id", []string{"", ""}, 2, "duplicate"},
		{"redelivery after others", []string{"a", "b", "c", "a"}, 6, "duplicate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			h := newTestHandler(t, testConfig(), rec, nil)
			var last *httptest.ResponseRecorder
			for _, d := range tt.deliveries {
				headers := map[string]string{"X-GitHub-Event": "push"}
				if d != "" {
					headers["X-GitHub-Delivery"] = d
				}
				last = request{path: "github", body: body, headers: headers, signAs: "github"}.do(h)
				if last.Code != http.StatusOK {
					t.Fatalf("status %d: %q", last.Code, last.Body)
				}
			}
			if n := len(rec.got()); n != tt.wantChanges {
				t.Errorf("%d changes, want %d", n, tt.wantChanges)
			}
			if !strings.HasPrefix(last.Body.String(), tt.wantLast) {
				t.Errorf("last answer %q, want %q", last.Body, tt.wantLast)
			}
		})
	}
}

func TestDuplicateConcurrent(t *testing.T) {
	var calls sync.Map
	release := make(chan struct{})
	h, err := New(Options{
		Config:     testConfig(),
		Components: testComponents,
		Sink: func(_ context.Context, c Change) error {
			<-release
			n, _ := calls.LoadOrStore(c.Component, new(int))
			*(n.(*int))++
			return nil
		},
		Logger: kilntest.QuietLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	body := fixture(t, "github_push.json")
	var wg sync.WaitGroup
	codes := make([]int, 8)
	for i := range codes {
		wg.Go(func() {
			codes[i] = request{path: "github", body: body, headers: ghHeaders("push", "same"), signAs: "github"}.do(h).Code
		})
	}
	time.Sleep(50 * time.Millisecond)
	close(release)
	wg.Wait()
	for i, c := range codes {
		if c != http.StatusOK {
			t.Errorf("request %d: status %d", i, c)
		}
	}
	for _, name := range []string{"opencore", "opencore-ci"} {
		n, ok := calls.Load(name)
		if !ok || *(n.(*int)) != 1 {
			t.Errorf("%s reached the sink %v times, want once", name, n)
		}
	}
}

func TestSinkFailure(t *testing.T) {
	rec := &recorder{err: errors.New("not the leader")}
	var notes []notified
	h := newTestHandler(t, testConfig(), rec, &notes)
	req := request{path: "github", body: fixture(t, "github_push.json"), headers: ghHeaders("push", "retry-me"), signAs: "github"}
	w := req.do(h)
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
		t.Fatalf("status %d, Retry-After %q; want 503 with Retry-After", w.Code, w.Header().Get("Retry-After"))
	}
	if len(notes) != 0 {
		t.Errorf("poller notified of a refused change: %v", notes)
	}
	rec.mu.Lock()
	rec.err = nil
	rec.mu.Unlock()
	if w := req.do(h); w.Code != http.StatusOK || !strings.HasPrefix(w.Body.String(), "accepted") {
		t.Fatalf("retry after a failure: %d %q, want it accepted", w.Code, w.Body)
	}
	want := []notified{{"git@github.com:kiln-build/opencore.git", "refs/heads/main", "9a0c3e3f0b1f5e7d2c4a6b8d0e2f4a6c8e0b2d4f"}}
	if !reflect.DeepEqual(notes, want) {
		t.Errorf("notified %v, want %v", notes, want)
	}
}

func TestDedupeBounds(t *testing.T) {
	now := testNow
	d := newDedupe(2, time.Hour, func() time.Time { return now })
	accept := func(key string) bool {
		release, dup, err := d.acquire(context.Background(), key)
		if err != nil {
			t.Fatal(err)
		}
		if !dup {
			release(true)
		}
		return !dup
	}
	steps := []struct {
		key     string
		advance time.Duration
		want    bool
	}{
		{"a", 0, true},
		{"a", 0, false},
		{"b", 0, true},
		{"c", 0, true}, // evicts a, the least recent
		{"b", 0, false},
		{"a", 0, true},
		{"a", 2 * time.Hour, true}, // the window passed
	}
	for i, s := range steps {
		now = now.Add(s.advance)
		if got := accept(s.key); got != s.want {
			t.Fatalf("step %d (%s): accepted %v, want %v", i, s.key, got, s.want)
		}
	}
	if n := d.order.Len(); n > 2 {
		t.Errorf("%d entries kept, bound is 2", n)
	}
}

func TestSetComponents(t *testing.T) {
	rec := &recorder{}
	h := newTestHandler(t, testConfig(), rec, nil)
	req := request{path: "github", body: fixture(t, "github_unknown_repo.json"), headers: ghHeaders("push", "x1"), signAs: "github"}
	if w := req.do(h); w.Code != http.StatusAccepted {
		t.Fatalf("before: %d", w.Code)
	}
	if err := h.SetComponents([]Component{{Name: "dotfiles", Repo: "github.com:ada/dotfiles"}}); err != nil {
		t.Fatal(err)
	}
	req.headers = ghHeaders("push", "x2")
	if w := req.do(h); w.Code != http.StatusOK {
		t.Fatalf("after: %d %q", w.Code, w.Body)
	}
	if err := h.SetComponents([]Component{{Name: "bad", Repo: "relative/path"}}); err == nil {
		t.Error("a bad URL was accepted")
	}
	if err := h.SetComponents([]Component{{Name: "bad", Repo: "https://h/o/r", Branches: []string{"["}}}); err == nil {
		t.Error("a bad branch pattern was accepted")
	}
}
