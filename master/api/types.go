package api

import (
	"errors"
	"time"
)

// The records below are the API's own: users script against their JSON, so
// they change only on purpose. The raft records they are made from live in
// master/state and may change shape freely; master/view converts one into
// the other, in one place.

// Errors a Backend returns for the API to map onto status codes. Backends
// wrap their own errors in these; the API knows nothing else.
var (
	ErrNotFound         = errors.New("not found")
	ErrUnknownComponent = errors.New("unknown component")
	ErrInvalid          = errors.New("invalid request")
	// ErrConflict: the request contradicts the record, such as cancelling
	// a build that has already ended (409).
	ErrConflict = errors.New("conflict")
	// ErrUnavailable means the master cannot do this now (no signing
	// agent, not the leader): 503, try elsewhere or later.
	ErrUnavailable = errors.New("unavailable")
)

// Build is a build request and, once dispatched, the build it became.
type Build struct {
	ID        int64    `json:"id"`
	Buildset  int64    `json:"buildset"`
	Change    int64    `json:"change"`
	Builder   string   `json:"builder"`
	Component string   `json:"component"`
	Target    string   `json:"target"`
	Revision  string   `json:"revision,omitempty"`
	Deps      []string `json:"deps,omitempty"`
	Tags      []string `json:"tags,omitempty"`
	Priority  int      `json:"priority,omitempty"`
	Collapse  bool     `json:"collapse,omitempty"`

	Status       string `json:"status"`
	Summary      string `json:"summary,omitempty"`
	SupersededBy int64  `json:"superseded_by,omitempty"`

	Created time.Time `json:"created"`
	Started time.Time `json:"started,omitzero"`
	Ended   time.Time `json:"ended,omitzero"`

	Worker     string            `json:"worker,omitempty"`
	Attempt    int               `json:"attempt"`
	Attempts   []Attempt         `json:"attempts,omitempty"`
	Steps      []Step            `json:"steps,omitempty"`
	Properties map[string]string `json:"properties,omitempty"`
	Artifacts  []Artifact        `json:"artifacts,omitempty"`
}

// Attempt is one dispatch of a build to a worker.
type Attempt struct {
	N        int       `json:"n"`
	Worker   string    `json:"worker"`
	Assigned time.Time `json:"assigned"`
	Started  time.Time `json:"started,omitzero"`
	Ended    time.Time `json:"ended,omitzero"`
	Status   string    `json:"status"`
	Reason   string    `json:"reason,omitempty"`
}

// Step is one step of a build's current attempt.
type Step struct {
	Index   int       `json:"index"`
	Name    string    `json:"name"`
	Status  string    `json:"status"`
	Summary string    `json:"summary,omitempty"`
	Started time.Time `json:"started,omitzero"`
	Ended   time.Time `json:"ended,omitzero"`
}

// Artifact is a file a build kept, stored by its sha256.
type Artifact struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Change is a new revision of a component: pushed, polled or forced.
type Change struct {
	ID        int64     `json:"id"`
	Component string    `json:"component"`
	Target    string    `json:"target,omitempty"`
	Revision  string    `json:"revision,omitempty"`
	Ref       string    `json:"ref,omitempty"`
	Source    *Source   `json:"source,omitempty"`
	Reason    string    `json:"reason"`
	Created   time.Time `json:"created"`
	Buildset  int64     `json:"buildset"`
}

// Source says where a change came from.
type Source struct {
	Kind     string `json:"kind"` // webhook, poll or force
	Provider string `json:"provider,omitempty"`
	Delivery string `json:"delivery,omitempty"`
	User     string `json:"user,omitempty"`
	Poller   string `json:"poller,omitempty"`
}

// BuildFilter selects builds; empty fields match all.
type BuildFilter struct {
	Component string
	Target    string
	Status    string
	Worker    string
	Buildset  int64
	Limit     int
	Offset    int
}

// BuildRef names a builder's latest build and how it ended.
type BuildRef struct {
	ID     int64  `json:"id"`
	Status string `json:"status"`
}

// Worker is a worker as operators see it: what it said in its hello and
// what the leader observes of it now.
type Worker struct {
	Name        string    `json:"name"`
	Tags        []string  `json:"tags"`
	Slots       int       `json:"slots"`
	KilnVersion string    `json:"kiln_version,omitempty"`
	Protocol    int       `json:"protocol"`
	LastHello   time.Time `json:"last_hello"`
	Connected   bool      `json:"connected"`
	Draining    bool      `json:"draining"`
	LastSeen    time.Time `json:"last_seen,omitzero"`
	Running     []int64   `json:"running"`
	Free        int       `json:"free"`
}

// Explanation says why a request waits.
type Explanation struct {
	Build   int64    `json:"build"`
	Builder string   `json:"builder"`
	Status  string   `json:"status"`
	Reason  string   `json:"reason"`
	Tags    []string `json:"tags,omitempty"`
	// WaitsFor names the dependency, MissingTags the tags no connected
	// worker has, BusyWorkers the matching workers whose slots are all taken.
	WaitsFor    string   `json:"waits_for,omitempty"`
	MissingTags []string `json:"missing_tags,omitempty"`
	BusyWorkers []string `json:"busy_workers,omitempty"`
}

// ConfigStatus tells which config the farm runs and why a newer one was
// refused.
type ConfigStatus struct {
	Source string `json:"source"` // the local path or the git URL
	Branch string `json:"branch,omitempty"`
	Path   string `json:"path,omitempty"` // inside the repository
	// Commit is the active config's git commit, or "sha256:" and the hash
	// of a local config's files.
	Commit   string    `json:"commit"`
	LoadedAt time.Time `json:"loaded_at"`
	// Took is how long the last applied reload took, from seeing the new
	// version to the new config being active.
	Took     string `json:"took,omitempty"`
	Builders int    `json:"builders"`
	// Added, Removed and Changed count builders the last reload changed.
	Added   int `json:"added"`
	Removed int `json:"removed"`
	Changed int `json:"changed"`
	// Cancelled counts queued requests of removed builders the last reload
	// cancelled.
	Cancelled int `json:"cancelled"`
	// Error is set while the newest version is refused.
	Error *ConfigError `json:"error,omitempty"`
	// Fetch is the config repository's poller; nil for a local config.
	Fetch *FetchStatus `json:"fetch,omitempty"`
}

// ConfigError is why a config version was refused.
type ConfigError struct {
	Commit  string    `json:"commit"`
	At      time.Time `json:"at"`
	Message string    `json:"message"`
	// File, Line and Column locate the first problem, when it has a place.
	File   string `json:"file,omitempty"`
	Line   int    `json:"line,omitempty"`
	Column int    `json:"column,omitempty"`
}

// FetchStatus is the health of the config repository's poller.
type FetchStatus struct {
	LastPoll  time.Time `json:"last_poll,omitzero"`
	NextPoll  time.Time `json:"next_poll,omitzero"`
	Failures  int       `json:"failures"`
	LastError string    `json:"last_error,omitempty"`
}

// Poller is one repository polled for new revisions.
type Poller struct {
	URL        string   `json:"url"`
	Key        string   `json:"key"`
	Components []string `json:"components"`
	// Refs is how many refs the poller knows the revision of.
	Refs       int       `json:"refs"`
	LastPoll   time.Time `json:"last_poll,omitzero"`
	NextPoll   time.Time `json:"next_poll,omitzero"`
	LastChange time.Time `json:"last_change,omitzero"`
	LastError  string    `json:"last_error,omitempty"`
	// Failures counts the polls that failed in a row; the poller backs off
	// while it is above zero, which NextPoll already reflects.
	Failures int `json:"failures"`
	// Polls counts the polls since the poller started.
	Polls int `json:"polls"`
}
