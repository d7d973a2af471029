// Package hooks is Kiln's webhook intake: it verifies pushes sent by GitHub,
// GitLab, Gitea/Forgejo, Bitbucket Cloud and generic senders, maps them to
// the components built from that repository and branch, and hands one
// Change per component to the master's sink.
//
// The types shared with the poller (Change, Component, RepoKey) live here so
// that every source of changes speaks one vocabulary and one notion of "the
// same repository".
package hooks

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"strings"
	"time"
)

// Source kinds.
const (
	KindWebhook = "webhook"
	KindPoller  = "poller"
	KindForce   = "force"
)

// ConfigComponent is the component name under which the master registers its
// config repository. The '@' keeps it apart from real components, whose
// names are package-like identifiers; config validation must refuse '@' in
// them for this to hold.
const ConfigComponent = "@config"

// Change is a new revision of one component's repository.
type Change struct {
	Component string
	// RepoURL is the URL the component's configuration names, not the form the
	// sender used, so checkouts use what the operator wrote.
	RepoURL string
	// Exactly one of Branch and Tag is set.
	Branch   string
	Tag      string
	Revision string
	Source   Source
	Time     time.Time
}

// Source records where a change came from.
type Source struct {
	Kind     string // KindWebhook, KindPoller or KindForce
	Provider string // webhook provider: github, gitlab, gitea, bitbucket, generic
	Delivery string // the provider's delivery id, when it sent one
	User     string // who pushed (webhook) or forced the change
	Poller   string // normalised repository key of the poller that saw it
}

// Component is what change intake needs to know of a configured component.
type Component struct {
	Name string
	Repo string
	// Branches are names or path.Match patterns ("release/*"). Empty means the
	// repository's default branch as its sender reports it (webhook payload,
	// or the remote HEAD for pollers), or main or master when nobody says.
	Branches []string
}

// ErrBadURL reports a repository URL that cannot be normalised.
var ErrBadURL = errors.New("bad repository URL")

// RepoKey normalises a repository URL so that the ssh, scp-like and https
// forms of one repository compare equal: "git@Host:o/r.git",
// "ssh://git@host:22/o/r", "https://host/o/r/" all give "host/o/r".
// The port is dropped because forges serve ssh and https on different ports
// for the same repository; the path keeps its case because some servers are
// case-sensitive. Local paths and file:// URLs give "file:" + the clean path.
func RepoKey(raw string) (string, error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return "", fmt.Errorf("%w: empty", ErrBadURL)
	}
	if strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return "", fmt.Errorf("%w: %q: contains spaces or control characters", ErrBadURL, raw)
	}
	var host, p string
	switch {
	case strings.HasPrefix(s, "/"):
		return localKey(s, raw)
	case strings.Contains(s, "://"):
		u, err := url.Parse(s)
		if err != nil {
			return "", fmt.Errorf("%w: %q: %v", ErrBadURL, raw, err)
		}
		switch strings.ToLower(u.Scheme) {
		case "file":
			return localKey(u.Path, raw)
		case "http", "https", "ssh", "git", "git+ssh", "ssh+git":
		default:
			return "", fmt.Errorf("%w: %q: unsupported scheme %q", ErrBadURL, raw, u.Scheme)
		}
		host, p = u.Hostname(), u.Path
	default:
		// scp-like syntax: [user@]host:path. A colon after the first slash
		// would make it a relative local path, which a farm cannot share.
		colon := strings.Index(s, ":")
		if colon < 0 || strings.Contains(s[:colon], "/") {
			return "", fmt.Errorf("%w: %q: neither a URL, an absolute path nor user@host:path", ErrBadURL, raw)
		}
		host, p = s[:colon], s[colon+1:]
		if at := strings.LastIndex(host, "@"); at >= 0 {
			host = host[at+1:]
		}
	}
	host = strings.ToLower(strings.Trim(host, "[]"))
	p = trimRepoPath(p)
	if host == "" || p == "" {
		return "", fmt.Errorf("%w: %q: want host and path", ErrBadURL, raw)
	}
	return host + "/" + p, nil
}

func localKey(p, raw string) (string, error) {
	p = trimRepoPath(path.Clean("/" + p))
	if p == "" {
		return "", fmt.Errorf("%w: %q: empty path", ErrBadURL, raw)
	}
	return "file:/" + p, nil
}

func trimRepoPath(p string) string {
	p = strings.Trim(p, "/")
	p = strings.TrimSuffix(p, ".git")
	return strings.Trim(p, "/")
}

// ParseRef splits a full ref name into a branch or a tag; ok is false for
// every other ref (pull requests, notes, HEAD).
func ParseRef(ref string) (branch, tag string, ok bool) {
	if b, found := strings.CutPrefix(ref, "refs/heads/"); found && b != "" {
		return b, "", true
	}
	if t, found := strings.CutPrefix(ref, "refs/tags/"); found && t != "" {
		return "", t, true
	}
	return "", "", false
}

// Wants reports whether a push to branch should build c. Tags are releases:
// they build every component of the repository, whatever its branches.
func (c Component) Wants(branch, tag, defaultBranch string) bool {
	if tag != "" {
		return true
	}
	if len(c.Branches) == 0 {
		if defaultBranch != "" {
			return branch == defaultBranch
		}
		return branch == "main" || branch == "master"
	}
	for _, pat := range c.Branches {
		if ok, _ := path.Match(pat, branch); ok {
			return true
		}
	}
	return false
}

func (c Component) validate() error {
	if c.Name == "" {
		return errors.New("component without a name")
	}
	for _, pat := range c.Branches {
		if _, err := path.Match(pat, ""); err != nil {
			return fmt.Errorf("component %s: branch pattern %q: %w", c.Name, pat, err)
		}
	}
	return nil
}

// Routes indexes components by repository key. It is immutable; a config
// reload builds a new one.
type Routes struct {
	byKey map[string][]Component
}

// NewRoutes indexes components, refusing URLs RepoKey cannot normalise and
// bad branch patterns.
func NewRoutes(cs []Component) (*Routes, error) {
	r := &Routes{byKey: make(map[string][]Component)}
	for _, c := range cs {
		if err := c.validate(); err != nil {
			return nil, fmt.Errorf("index components: %w", err)
		}
		key, err := RepoKey(c.Repo)
		if err != nil {
			return nil, fmt.Errorf("index component %s: %w", c.Name, err)
		}
		r.byKey[key] = append(r.byKey[key], c)
	}
	return r, nil
}

// Lookup returns the components whose repository is any of urls (a sender
// often names one repository several ways) and the key that matched.
func (r *Routes) Lookup(urls ...string) (key string, cs []Component) {
	for _, u := range urls {
		k, err := RepoKey(u)
		if err != nil {
			continue
		}
		if cs := r.byKey[k]; len(cs) > 0 {
			return k, cs
		}
	}
	return "", nil
}
