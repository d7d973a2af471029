package hooks

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// ErrMalformed reports a body that is not the payload its event promises;
// the handler answers 400 with the wrapped detail.
var ErrMalformed = errors.New("malformed payload")

type eventKind int

const (
	eventOther eventKind = iota
	eventPush
	eventPing
)

// push is one ref update, whatever the provider said it in.
type push struct {
	urls          []string // every form of the repository URL the payload names
	ref           string
	after         string // the ref's new value; all zeros when it was deleted
	revision      string // what to build: after, or the commit an annotated tag points at
	defaultBranch string
	user          string
	delivery      string // only generic senders put it in the body
}

// provider is everything that differs between senders. The handler holds
// one code path; adding a provider is adding a row to providers.
type provider struct {
	name            string
	sig             signature
	eventHeaders    []string
	defaultEvent    string // when no event header is present; empty makes it required
	events          map[string]eventKind
	deliveryHeaders []string
	parse           func(body []byte) ([]push, error)
}

var providers = map[string]*provider{
	"github": {
		name:            "github",
		sig:             signature{headers: []string{"X-Hub-Signature-256"}, prefix: "sha256="},
		eventHeaders:    []string{"X-GitHub-Event"},
		events:          map[string]eventKind{"push": eventPush, "ping": eventPing},
		deliveryHeaders: []string{"X-GitHub-Delivery"},
		parse:           parseGitHubStyle,
	},
	// Gitea and Forgejo send a GitHub-shaped body, also under X-GitHub-Event,
	// but sign without the "sha256=" prefix.
	"gitea": {
		name:            "gitea",
		sig:             signature{headers: []string{"X-Gitea-Signature", "X-Forgejo-Signature"}},
		eventHeaders:    []string{"X-Gitea-Event", "X-Forgejo-Event", "X-Gogs-Event"},
		events:          map[string]eventKind{"push": eventPush},
		deliveryHeaders: []string{"X-Gitea-Delivery", "X-Forgejo-Delivery"},
		parse:           parseGitHubStyle,
	},
	"gitlab": {
		name:         "gitlab",
		sig:          signature{headers: []string{"X-Gitlab-Token"}, token: true},
		eventHeaders: []string{"X-Gitlab-Event"},
		events:       map[string]eventKind{"Push Hook": eventPush, "Tag Push Hook": eventPush},
		// Idempotency-Key (GitLab 17.4+) stays the same across retries of one
		// event; older releases only send the event UUID.
		deliveryHeaders: []string{"Idempotency-Key", "X-Gitlab-Event-UUID"},
		parse:           parseGitLab,
	},
	"bitbucket": {
		name:         "bitbucket",
		sig:          signature{headers: []string{"X-Hub-Signature"}, prefix: "sha256="},
		eventHeaders: []string{"X-Event-Key"},
		events:       map[string]eventKind{"repo:push": eventPush, "diagnostics:ping": eventPing},
		// X-Hook-UUID names the webhook, not the delivery: it is the same for
		// every push and must not be used to deduplicate.
		deliveryHeaders: []string{"X-Request-UUID"},
		parse:           parseBitbucket,
	},
	"generic": {
		name:            "generic",
		sig:             signature{headers: []string{"X-Kiln-Signature"}, prefix: "sha256="},
		eventHeaders:    []string{"X-Kiln-Event"},
		defaultEvent:    "push",
		events:          map[string]eventKind{"push": eventPush, "ping": eventPing},
		deliveryHeaders: []string{"X-Kiln-Delivery"},
		parse:           parseGeneric,
	},
}

// detectProvider picks the sender of a request to /hooks/config from the
// event header only it sends. Gitea comes before GitHub because Gitea also
// sends X-GitHub-Event.
func detectProvider(h http.Header) *provider {
	for _, name := range []string{"gitea", "github", "gitlab", "bitbucket"} {
		if firstHeader(h, providers[name].eventHeaders) != "" {
			return providers[name]
		}
	}
	return providers["generic"]
}

// decodeJSON unmarshals body into v with errors that name the offending
// byte or field, because the sender's operator reads them in a delivery log.
func decodeJSON(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return fmt.Errorf("%w: empty body", ErrMalformed)
	}
	err := json.Unmarshal(body, v)
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &syn):
		return fmt.Errorf("%w: invalid JSON at byte %d: %v", ErrMalformed, syn.Offset, syn)
	case errors.As(err, &typ) && typ.Field != "":
		return fmt.Errorf("%w: field %s: want %s, got JSON %s", ErrMalformed, typ.Field, typ.Type, typ.Value)
	case errors.As(err, &typ):
		return fmt.Errorf("%w: want a JSON %s, got JSON %s", ErrMalformed, typ.Type, typ.Value)
	default:
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
}

type githubPush struct {
	Ref        string `json:"ref"`
	After      string `json:"after"`
	HeadCommit *struct {
		ID string `json:"id"`
	} `json:"head_commit"`
	Repository struct {
		CloneURL      string `json:"clone_url"`
		SSHURL        string `json:"ssh_url"`
		HTMLURL       string `json:"html_url"`
		GitURL        string `json:"git_url"`
		DefaultBranch string `json:"default_branch"`
	} `json:"repository"`
	Sender struct {
		Login string `json:"login"`
	} `json:"sender"`
}

func parseGitHubStyle(body []byte) ([]push, error) {
	var p githubPush
	if err := decodeJSON(body, &p); err != nil {
		return nil, err
	}
	r := p.Repository
	out := push{
		urls:          nonEmpty(r.CloneURL, r.SSHURL, r.HTMLURL, r.GitURL),
		ref:           p.Ref,
		after:         p.After,
		revision:      p.After,
		defaultBranch: r.DefaultBranch,
		user:          p.Sender.Login,
	}
	// For an annotated tag "after" is the tag object; head_commit is what
	// it points at, and that is what a build checks out.
	if p.HeadCommit != nil && p.HeadCommit.ID != "" {
		out.revision = p.HeadCommit.ID
	}
	return []push{out}, nil
}

type gitlabPush struct {
	Ref          string `json:"ref"`
	After        string `json:"after"`
	CheckoutSHA  string `json:"checkout_sha"`
	UserUsername string `json:"user_username"`
	Project      struct {
		WebURL        string `json:"web_url"`
		GitSSHURL     string `json:"git_ssh_url"`
		GitHTTPURL    string `json:"git_http_url"`
		DefaultBranch string `json:"default_branch"`
	} `json:"project"`
	Repository struct {
		Homepage   string `json:"homepage"`
		GitSSHURL  string `json:"git_ssh_url"`
		GitHTTPURL string `json:"git_http_url"`
	} `json:"repository"`
}

func parseGitLab(body []byte) ([]push, error) {
	var p gitlabPush
	if err := decodeJSON(body, &p); err != nil {
		return nil, err
	}
	out := push{
		urls: nonEmpty(p.Project.GitHTTPURL, p.Project.GitSSHURL, p.Project.WebURL,
			p.Repository.GitHTTPURL, p.Repository.GitSSHURL, p.Repository.Homepage),
		ref:           p.Ref,
		after:         p.After,
		revision:      p.After,
		defaultBranch: p.Project.DefaultBranch,
		user:          p.UserUsername,
	}
	if p.CheckoutSHA != "" {
		out.revision = p.CheckoutSHA
	}
	return []push{out}, nil
}

type bitbucketRef struct {
	Type   string `json:"type"`
	Name   string `json:"name"`
	Target struct {
		Hash string `json:"hash"`
	} `json:"target"`
}

type bitbucketPush struct {
	Actor struct {
		Nickname    string `json:"nickname"`
		DisplayName string `json:"display_name"`
	} `json:"actor"`
	Repository struct {
		FullName string `json:"full_name"`
		Links    struct {
			HTML struct {
				Href string `json:"href"`
			} `json:"html"`
		} `json:"links"`
	} `json:"repository"`
	Push struct {
		Changes []struct {
			New *bitbucketRef `json:"new"`
			Old *bitbucketRef `json:"old"`
		} `json:"changes"`
	} `json:"push"`
}

// parseBitbucket yields one push per change: one Bitbucket delivery can
// carry several refs.
func parseBitbucket(body []byte) ([]push, error) {
	var p bitbucketPush
	if err := decodeJSON(body, &p); err != nil {
		return nil, err
	}
	if len(p.Push.Changes) == 0 {
		return nil, fmt.Errorf("%w: push.changes is empty", ErrMalformed)
	}
	urls := nonEmpty(p.Repository.Links.HTML.Href)
	if p.Repository.FullName != "" {
		// Bitbucket Cloud repositories all live on bitbucket.org.
		urls = append(urls, "https://bitbucket.org/"+p.Repository.FullName)
	}
	user := p.Actor.Nickname
	if user == "" {
		user = p.Actor.DisplayName
	}
	out := make([]push, 0, len(p.Push.Changes))
	for i, c := range p.Push.Changes {
		ref, after := c.New, ""
		if ref == nil {
			// A deleted ref has no new side; its name is on the old one.
			ref, after = c.Old, zeroID
		}
		if ref == nil {
			return nil, fmt.Errorf("%w: push.changes[%d] has neither new nor old", ErrMalformed, i)
		}
		if after == "" {
			after = ref.Target.Hash
		}
		var full string
		switch ref.Type {
		case "branch", "named_branch":
			full = "refs/heads/" + ref.Name
		case "tag", "annotated_tag":
			full = "refs/tags/" + ref.Name
		default:
			return nil, fmt.Errorf("%w: push.changes[%d]: ref type %q is neither branch nor tag", ErrMalformed, i, ref.Type)
		}
		out = append(out, push{urls: urls, ref: full, after: after, revision: after, user: user})
	}
	return out, nil
}

// GenericPush is the body a generic sender posts to /hooks/generic.
type GenericPush struct {
	Repository    string `json:"repository"`               // any URL form RepoKey accepts
	Ref           string `json:"ref"`                      // refs/heads/NAME or refs/tags/NAME
	After         string `json:"after"`                    // new commit id; all zeros deletes the ref
	Before        string `json:"before,omitempty"`         // previous commit id, informational
	Delivery      string `json:"delivery,omitempty"`       // unique per event, same on retries
	User          string `json:"user,omitempty"`           // who pushed
	DefaultBranch string `json:"default_branch,omitempty"` // for components that list no branches
}

func parseGeneric(body []byte) ([]push, error) {
	var p GenericPush
	if err := decodeJSON(body, &p); err != nil {
		return nil, err
	}
	if p.Ref != "" && !strings.HasPrefix(p.Ref, "refs/") {
		return nil, fmt.Errorf("%w: ref %q: want refs/heads/NAME or refs/tags/NAME", ErrMalformed, p.Ref)
	}
	return []push{{
		urls:          nonEmpty(p.Repository),
		ref:           p.Ref,
		after:         p.After,
		revision:      p.After,
		defaultBranch: p.DefaultBranch,
		user:          p.User,
		delivery:      p.Delivery,
	}}, nil
}

const zeroID = "0000000000000000000000000000000000000000"

// check refuses pushes missing what every provider must say.
func (p push) check() error {
	switch {
	case len(p.urls) == 0:
		return fmt.Errorf("%w: no repository URL", ErrMalformed)
	case p.ref == "":
		return fmt.Errorf("%w: missing ref", ErrMalformed)
	case !isObjectID(p.after):
		return fmt.Errorf("%w: after %q: want a 40 or 64 hex digit object id", ErrMalformed, p.after)
	case !isObjectID(p.revision):
		return fmt.Errorf("%w: revision %q: want a 40 or 64 hex digit object id", ErrMalformed, p.revision)
	}
	return nil
}

func (p push) deleted() bool { return strings.Trim(p.after, "0") == "" }

func isObjectID(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

func nonEmpty(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}
