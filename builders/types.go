// Package builders turns a farm's declarative configuration into a validated
// matrix of builders and the dependency graph between them. It is pure: the
// only I/O it does is reading the configuration files.
package builders

import (
	"fmt"
	"time"

	"github.com/kiln-build/kiln/protocol"
)

// Config is a farm's configuration as the operator wrote it, after merging
// every file of a config directory.
type Config struct {
	Master     Master            `yaml:"master"`
	Targets    []Distro          `yaml:"targets"`
	Components []Component       `yaml:"components"`
	Templates  map[string][]Step `yaml:"templates"`
	Workers    []Worker          `yaml:"workers"`
	Repos      Repos             `yaml:"repos"`
	Users      []User            `yaml:"users"`
	Notify     []Notify          `yaml:"notify"`

	// Files lists the files the config was read from, in merge order.
	Files []string `yaml:"-"`

	pos map[string]Pos // key path → where it was written; nil for hand-built configs
}

// Master holds the control plane's own settings.
type Master struct {
	Title   string `yaml:"title"`
	HTTP    string `yaml:"http"`     // default ":8010"
	NATS    string `yaml:"nats"`     // embedded NATS listen address, default ":4222"
	NATSURL string `yaml:"nats_url"` // external NATS cluster instead of the embedded server
	DataDir string `yaml:"data_dir"`
	// PublicURL is how workers and package clients reach the master's HTTP
	// side (repositories under /repos/), e.g. "http://build.example.com:8010".
	PublicURL string `yaml:"public_url"`
	// HeartbeatTimeout after which a silent worker's builds are re-queued.
	HeartbeatTimeout Duration `yaml:"heartbeat_timeout"`
	// MaxAttempts bounds how often a lost build is retried before it ends as exception.
	MaxAttempts int `yaml:"max_attempts"`
	// PublicPages false makes every page require a login.
	PublicPages *bool `yaml:"public_pages"`
	// Hooks holds the webhook secrets, Poll the pollers' schedule.
	Hooks Hooks `yaml:"hooks"`
	Poll  Poll  `yaml:"poll"`
	// Config names a git repository to load the farm's config from (the
	// file that says so is then only the bootstrap).
	Config ConfigSource `yaml:"config"`
}

// Distro is one distribution's slice of the platform matrix.
type Distro struct {
	Distro   string   `yaml:"distro"`   // e.g. debian, ubuntu, centos
	Versions []string `yaml:"versions"` // codenames (bookworm) or release numbers (9)
	Arches   []string `yaml:"arches"`   // amd64, arm64, x86_64, aarch64 ...
	Kind     string   `yaml:"kind"`     // pbuilder, sbuild, mock, rpmbuild, dpkg, nfpm, shell
	Format   string   `yaml:"format"`   // apt or yum; implied by kinds other than nfpm and shell
	Tags     []string `yaml:"tags"`     // worker tags every build on this distro needs
	Steps    []Step   `yaml:"steps"`    // default step list; empty means the kind's default
}

// Filter selects targets by glob on each part; an empty part matches all.
type Filter struct {
	Distro  string `yaml:"distro"`
	Version string `yaml:"version"`
	Arch    string `yaml:"arch"`
}

// Component is one source repository that yields packages.
type Component struct {
	Name       string            `yaml:"name"`
	Git        string            `yaml:"git"`      // URL, user@host:path, or a path (relative ones are made absolute against the file's directory)
	Branches   []string          `yaml:"branches"` // default [main]
	Depends    []string          `yaml:"depends"`
	Only       []Filter          `yaml:"only"`
	Exclude    []Filter          `yaml:"exclude"`
	Kind       string            `yaml:"kind"`  // overrides the target's build kind
	Steps      []Step            `yaml:"steps"` // overrides the kind's step list
	Tags       []string          `yaml:"tags"`  // extra worker tags its builds need
	Properties map[string]string `yaml:"properties"`
	Priority   int               `yaml:"priority"`
	Rebuild    string            `yaml:"rebuild"` // none, direct (default), transitive: which reverse dependencies a change rebuilds
	// Versions is "rebuild" (the default: a build that would repeat a
	// published version gets a higher one, see docs/versions.md) or "exact"
	// (the packaging's versions as they are; a republish of one with other
	// bytes is refused).
	Versions string `yaml:"versions"`
	// Collapse false keeps every pending request instead of collapsing them
	// into the newest; nil means the default, true.
	Collapse *bool `yaml:"collapse"`
	// Poll is "off" (webhooks only) or an interval overriding master.poll's.
	Poll *PollSetting `yaml:"poll"`
}

// Step is one unit of a build. Use names a template whose steps are spliced
// in its place.
type Step struct {
	Name         string            `yaml:"name"` // default: the type, numbered when repeated (shell, shell-2)
	Use          string            `yaml:"use"`
	Type         string            `yaml:"type"` // one of protocol.StepTypes
	Command      []string          `yaml:"command"`
	Script       string            `yaml:"script"`
	Env          map[string]string `yaml:"env"`
	Workdir      string            `yaml:"workdir"`
	Timeout      Duration          `yaml:"timeout"`
	SetProperty  map[string]string `yaml:"set_property"` // property name → regexp with one group, matched on the step's output
	AllowFailure bool              `yaml:"allow_failure"`
	With         map[string]string `yaml:"with"`      // step-type specific options
	Artifacts    []string          `yaml:"artifacts"` // upload globs
	// When holds conditions that must all hold for the step to run; on a
	// use: step they apply to every step of the template. nil when not
	// written; empty (and refused) when written as {}.
	When When `yaml:"when"`
}

// When is a step's `when:` as the worker receives it: the mapping's keys in
// the order written, those under `not:` with Not set. Its own type so that
// the decoder can read the mapping form (see decoder.when).
type When []protocol.Condition

// Worker is a build host the master accepts.
type Worker struct {
	Name        string   `yaml:"name"`
	Credentials string   `yaml:"credentials"` // reference to the worker's secret: file path or env:VAR
	Slots       int      `yaml:"slots"`       // 1-1024, default 1
	Tags        []string `yaml:"tags"`
}

// Repos configures the published repositories.
type Repos struct {
	Origin     string    `yaml:"origin"`
	Label      string    `yaml:"label"`
	ValidFor   Duration  `yaml:"valid_for"` // Release Valid-Until = Date + ValidFor; 0 omits it
	Retain     int       `yaml:"retain"`    // versions of each package kept per channel
	Channels   []Channel `yaml:"channels"`
	SignerKeys []string  `yaml:"-"`
}

// Channel is a repository flavour such as dev or stable.
type Channel struct {
	Name        string `yaml:"name"`
	Key         string `yaml:"key"`          // signing key name or fingerprint
	PromoteFrom string `yaml:"promote_from"` // e.g. stable promotes from dev
	Approval    bool   `yaml:"approval"`
}

// User may log in to the web page and API.
type User struct {
	Name         string `yaml:"name"`
	PasswordHash string `yaml:"password_hash"` // bcrypt
	Token        string `yaml:"token"`         // reference: file path or env:VAR
}

// Notify is kept as data until notifications are implemented.
type Notify struct {
	Type   string            `yaml:"type"`
	Events []string          `yaml:"events"`
	With   map[string]string `yaml:"with"`
}

// Duration is a time.Duration written as "30s", "10m" in YAML.
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("invalid duration %q (want e.g. 30s, 10m, 2h)", b)
	}
	if v < 0 {
		return fmt.Errorf("invalid duration %q: negative", b)
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes the Go duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// Target is one cell of the platform matrix.
type Target struct {
	Distro  string
	Version string
	Arch    string
}

// String gives the target's name, e.g. "debian/bookworm/amd64".
func (t Target) String() string { return t.Distro + "/" + t.Version + "/" + t.Arch }

// Builder is a component on one target, after filters, with everything a
// build of it needs resolved. Builders of one component on one distro share
// their Tags, Steps and Properties: treat them as read-only.
type Builder struct {
	Name       string // component@distro/version/arch
	Component  *Component
	Target     Target
	Kind       string
	Format     string
	Tags       []string // worker tags required: the target's, the component's and the kind's tool; sorted, unique
	Steps      []Step   // templates spliced in, defaults applied
	Properties map[string]string
	Priority   int
	Collapse   bool
	Deps       []string // direct dependency builders on the same target
	Dependents []string // builders on the same target that depend directly on this one
}

// Matrix is a validated, expanded configuration. Nothing changes it after
// Expand, so any number of goroutines may read it.
type Matrix struct {
	Config   *Config
	Builders []*Builder // dependencies before dependents; ties by name
	Targets  []Target   // sorted
	byName   map[string]*Builder

	order       map[string]int // builder name → index in Builders
	components  map[string]*Component
	byComponent map[string][]*Builder
}
