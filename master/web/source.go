// Package web serves Kiln's status pages: the builder grid, builds with live
// logs, workers, changes and repositories, plus force / rebuild / cancel forms
// for logged-in users. It reads the farm only through Source and acts on it
// only through Actions, so the master's state can change shape without the
// pages noticing.
package web

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/kiln-build/kiln/master/api"
	"github.com/kiln-build/kiln/protocol"
)

// ErrNotFound is what a Source or Actions returns (wrapped) for an unknown
// build, builder or component; the pages turn it into a 404.
var ErrNotFound = errors.New("not found")

// ErrInvalid is what Actions returns (wrapped) for a request that cannot be
// carried out as asked, such as cancelling a finished build; the pages turn it
// into a 400 showing the message.
var ErrInvalid = errors.New("invalid request")

// Status is a build's or a step's state, one of protocol.Statuses.
type Status string

// The statuses a build or step can have, as the master and workers spell
// them.
const (
	StatusPending    Status = protocol.StatusPending
	StatusRunning    Status = protocol.StatusRunning
	StatusSuccess    Status = protocol.StatusSuccess
	StatusFailure    Status = protocol.StatusFailure
	StatusException  Status = protocol.StatusException
	StatusCancelled  Status = protocol.StatusCancelled
	StatusLost       Status = protocol.StatusLost
	StatusSuperseded Status = protocol.StatusSuperseded
	StatusSkipped    Status = protocol.StatusSkipped
)

// Statuses lists every status in the order summaries show them: what needs
// attention first. The order is the pages' own; the set is
// protocol.Statuses, and a test says so together with each status's CSS
// class.
var Statuses = []Status{
	StatusFailure, StatusException, StatusRunning, StatusPending, StatusSuccess,
	StatusCancelled, StatusLost, StatusSuperseded, StatusSkipped,
}

// Valid reports whether s is one of Statuses.
func (s Status) Valid() bool { return slices.Contains(Statuses, s) }

// Finished reports whether s is final.
func (s Status) Finished() bool { return protocol.Terminal(string(s)) }

// Source is the read model the master implements for the pages. Every method
// must be safe for concurrent use and cheap enough to call once per page view:
// Grid in particular is called for every load of the front page.
type Source interface {
	// Grid returns the latest build of every builder.
	Grid(ctx context.Context) (Grid, error)
	// Builds returns the builds matching q, newest first, and how many matched.
	Builds(ctx context.Context, q BuildQuery) (BuildPage, error)
	// Build returns one build; ErrNotFound if there is no such id.
	Build(ctx context.Context, id int64) (BuildDetail, error)
	// FollowLog sends the build's log lines with Seq >= fromSeq: what is
	// stored first, then live lines as they arrive. The channel is closed
	// when the build has ended and every line was sent, or when ctx ends.
	// ErrNotFound if there is no such build.
	FollowLog(ctx context.Context, id int64, fromSeq int64) (<-chan LogLine, error)
	// Workers returns every worker the farm knows, connected or not.
	Workers(ctx context.Context) ([]Worker, error)
	// Changes returns the changes matching q, newest first.
	Changes(ctx context.Context, q ChangeQuery) (ChangePage, error)
	// Repositories returns what each channel publishes per target; empty
	// until the farm publishes anything.
	Repositories(ctx context.Context) ([]Repository, error)
	// ConfigStatus tells which config the farm runs and why a newer one was
	// refused, if it was.
	ConfigStatus(ctx context.Context) (ConfigStatus, error)
	// Pollers returns the repositories the farm polls for new revisions;
	// empty when polling is off or this master is not the one polling.
	Pollers(ctx context.Context) ([]Poller, error)
}

// Actions is what logged-in users can ask of the farm. user is the name the
// request was authenticated as, for the audit trail.
type Actions interface {
	// Force builds component at rev (empty: the branch head) on target
	// (empty: every target of the component).
	Force(ctx context.Context, user, component, target, rev string) (Forced, error)
	// Rebuild requests a new build of the same builder and revision.
	Rebuild(ctx context.Context, user string, buildID int64) (int64, error)
	// Cancel stops a pending or running build.
	Cancel(ctx context.Context, user string, buildID int64) error
}

// Forced tells what a force request caused.
type Forced struct {
	Change int64
	Builds []int64
}

// Target is one cell of the platform matrix.
type Target struct {
	Distro  string
	Version string
	Arch    string
}

// String is the target's name, e.g. "debian/bookworm/amd64".
func (t Target) String() string { return t.Distro + "/" + t.Version + "/" + t.Arch }

// Grid is the builder matrix: one row per component, one cell per target.
type Grid struct {
	Targets []Target
	Rows    []GridRow
}

// GridRow is one component; Cells is parallel to Grid.Targets.
type GridRow struct {
	Component string
	Cells     []GridCell
}

// GridCell is one builder's latest build. Builder is empty where the config
// builds nothing for that component and target; Build is 0 where the builder
// has never built.
type GridCell struct {
	Builder string
	Build   int64
	Status  Status
}

// BuildQuery selects builds; zero fields match everything.
type BuildQuery struct {
	Component string
	Target    string
	Worker    string
	Statuses  []Status
	Offset    int
	Limit     int
}

// BuildPage is one page of builds.
type BuildPage struct {
	Builds []BuildSummary
	Total  int
}

// BuildSummary is what lists of builds show.
type BuildSummary struct {
	ID        int64
	Builder   string
	Component string
	Target    string
	Revision  string
	Status    Status
	Summary   string
	// Waiting is the scheduler's answer to "why is this pending build not
	// running", e.g. "waiting for libgrace@debian/bookworm/amd64".
	Waiting string
	Worker  string
	Created time.Time
	Started time.Time
	Ended   time.Time
}

// BuildDetail is everything the build page shows.
type BuildDetail struct {
	BuildSummary
	Change     Change
	Steps      []Step
	Properties map[string]string
	Attempts   []Attempt
	Artifacts  []Artifact
}

// Step is one step of the build's current attempt.
type Step struct {
	Name    string
	Status  Status
	Summary string
	Started time.Time
	Ended   time.Time
}

// Attempt is one dispatch of the build to a worker.
type Attempt struct {
	N       int
	Worker  string
	Status  Status
	Reason  string
	Started time.Time
	Ended   time.Time
}

// Artifact is one file a build produced. URL is where it downloads from.
type Artifact struct {
	Name   string
	Size   int64
	SHA256 string
	URL    string
}

// Change is a new revision of a component.
type Change struct {
	ID        int64
	Component string
	Revision  string
	Branch    string
	Author    string
	Message   string
	// Source says how the change arrived: "webhook", "poller", "force".
	Source string
	When   time.Time
}

// ChangeQuery selects changes; zero fields match everything.
type ChangeQuery struct {
	Component string
	Offset    int
	Limit     int
}

// ChangePage is one page of changes.
type ChangePage struct {
	Changes []Change
	Total   int
}

// LogLine is one line of a build's log; Seq rises by one per line across the
// whole build so a reconnecting viewer can resume.
type LogLine struct {
	Seq  int64
	Step string
	Text string
}

// Worker is a build host as the master sees it.
type Worker struct {
	Name          string
	Tags          []string
	Slots         int
	Running       []int64
	LastHeartbeat time.Time
	Connected     bool
	Version       string
}

// Repository is one channel's packages for one target.
type Repository struct {
	Channel  string
	Target   string
	Packages []Package
	// Published is when this channel and target was last published.
	Published time.Time
}

// Package is one package version in a repository.
type Package struct {
	Name    string
	Version string
	Arch    string
}

// ConfigStatus tells which configuration the farm runs.
type ConfigStatus struct {
	// Commit identifies the last good config (a VCS revision or a file hash).
	Commit   string
	LoadedAt time.Time
	// Error is why the newest config was refused; empty when it was not.
	Error string
	File  string
	Line  int
}

// Poller is one repository polled for new revisions: the API's record
// itself, so the page and GET /api/v1/pollers cannot show different things.
type Poller = api.Poller
