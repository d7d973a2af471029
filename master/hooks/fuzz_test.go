package hooks

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/internal/kilntest"
)

// fuzzProvider drives a whole request through the handler with a valid
// signature, so the fuzzer reaches the parser and the mapping. Whatever the
// body, the answer must be one of the documented statuses and every change
// handed to the sink must be well formed.
func fuzzProvider(f *testing.F, provider string, events []string, fixtures ...string) {
	for _, name := range fixtures {
		for _, ev := range events {
			f.Add(ev, fixture(f, name))
		}
	}
	f.Add(events[0], []byte(`{}`))
	f.Add(events[0], []byte(`null`))
	f.Fuzz(func(t *testing.T, event string, body []byte) {
		rec := &recorder{}
		h, err := New(Options{
			Config:     testConfig(),
			Components: testComponents,
			Sink:       rec.sink,
			Logger:     kilntest.QuietLogger(),
		})
		if err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest(http.MethodPost, "/hooks/"+provider, bytes.NewReader(body))
		r.Header.Set(providers[provider].eventHeaders[0], event)
		sign(provider, testSecrets[provider], body, r.Header)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		switch w.Code {
		case http.StatusOK, http.StatusAccepted, http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("status %d: %q", w.Code, w.Body)
		}
		changes := rec.got()
		if len(changes) > 0 && w.Code != http.StatusOK {
			t.Fatalf("status %d with %d changes accepted", w.Code, len(changes))
		}
		for _, c := range changes {
			if c.Component == "" || !isObjectID(c.Revision) || (c.Branch == "") == (c.Tag == "") || c.Source.Kind != KindWebhook {
				t.Fatalf("malformed change %+v", c)
			}
		}
	})
}

func FuzzGitHub(f *testing.F) {
	fuzzProvider(f, "github", []string{"push", "ping"},
		"github_push.json", "github_tag.json", "github_delete.json", "github_ping.json", "github_config.json")
}

func FuzzGitea(f *testing.F) {
	fuzzProvider(f, "gitea", []string{"push"}, "gitea_push.json")
}

func FuzzGitLab(f *testing.F) {
	fuzzProvider(f, "gitlab", []string{"Push Hook", "Tag Push Hook"}, "gitlab_push.json", "gitlab_tag.json", "gitlab_delete.json")
}

func FuzzBitbucket(f *testing.F) {
	fuzzProvider(f, "bitbucket", []string{"repo:push"}, "bitbucket_push.json")
}

func FuzzGeneric(f *testing.F) {
	fuzzProvider(f, "generic", []string{"push", "ping"}, "generic_push.json")
}

// FuzzRepoKey holds RepoKey to its contract: no panic, and a trailing
// slash never changes the key of a URL or a path. (scp-like input is left
// out: "h::" plus a slash becomes "h:://", which git itself reads as a URL.)
func FuzzRepoKey(f *testing.F) {
	for _, c := range testComponents {
		f.Add(c.Repo)
	}
	f.Add("/srv/git/opencore.git")
	f.Fuzz(func(t *testing.T, raw string) {
		key, err := RepoKey(raw)
		if err != nil || key == "" {
			return
		}
		if s := strings.TrimSpace(raw); !strings.Contains(s, "://") && !strings.HasPrefix(s, "/") {
			return
		}
		if again, err := RepoKey(strings.TrimSpace(raw) + "/"); err != nil || again != key {
			t.Fatalf("RepoKey(%q) = %q but with a trailing slash %q, %v", raw, key, again, err)
		}
	})
}
