package builders

import (
	"maps"
	"slices"
	"strings"
	"time"
)

// Reverse-dependency rebuild policies (Component.Rebuild).
const (
	RebuildNone       = "none"       // only the changed component
	RebuildDirect     = "direct"     // plus the components that depend on it directly (the default)
	RebuildTransitive = "transitive" // plus everything that depends on it, however indirectly
)

// Repository formats (Distro.Format).
const (
	FormatApt = "apt"
	FormatYum = "yum"
)

// Master defaults; docs/master.md promises the ports to operators.
const (
	DefaultHTTP             = ":8010"
	DefaultNATS             = ":4222"
	DefaultHeartbeatTimeout = 30 * time.Second
	DefaultMaxAttempts      = 3
	DefaultBranch           = "main"
)

// kind describes a build kind: which repository format its packages fit
// ("" for any), which worker tag says a host has its tool, and the steps a
// builder of that kind runs when the config names none.
type kind struct {
	format string
	tool   string
	steps  []string
}

var kinds = map[string]kind{
	"nfpm":     {steps: []string{"checkout", "nfpm", "upload"}},
	"shell":    {steps: []string{"checkout"}},
	"dpkg":     {format: FormatApt, tool: "dpkg-buildpackage", steps: []string{"checkout", "dpkg", "upload"}},
	"pbuilder": {format: FormatApt, tool: "pbuilder", steps: []string{"checkout", "source", "pbuilder", "lintian", "upload"}},
	"sbuild":   {format: FormatApt, tool: "sbuild", steps: []string{"checkout", "source", "sbuild", "lintian", "upload"}},
	"mock":     {format: FormatYum, tool: "mock", steps: []string{"checkout", "source", "mock", "rpmlint", "upload"}},
	"rpmbuild": {format: FormatYum, tool: "rpmbuild", steps: []string{"checkout", "rpmbuild", "upload"}},
}

// kindNames is derived so a kind added to kinds is offered in hints too.
var kindNames = slices.Sorted(maps.Keys(kinds))

// Version policies (Component.Versions).
const (
	VersionsRebuild = "rebuild" // rebuilds and snapshots get versions that upgrade (the default)
	VersionsExact   = "exact"   // the packaging's versions, never changed
)

var versionPolicies = []string{VersionsExact, VersionsRebuild}

var rebuildPolicies = []string{RebuildDirect, RebuildNone, RebuildTransitive}

var formats = []string{FormatApt, FormatYum}

// applyDefaults fills what the operator left out. It is idempotent, so both
// Load and Expand (for hand-built configs) call it.
func (c *Config) applyDefaults() {
	m := &c.Master
	if m.HTTP == "" {
		m.HTTP = DefaultHTTP
	}
	if m.NATS == "" && m.NATSURL == "" {
		m.NATS = DefaultNATS
	}
	if m.HeartbeatTimeout == 0 {
		m.HeartbeatTimeout = Duration(DefaultHeartbeatTimeout)
	}
	if m.MaxAttempts == 0 {
		m.MaxAttempts = DefaultMaxAttempts
	}
	for i := range c.Targets {
		t := &c.Targets[i]
		if t.Format == "" {
			t.Format = kinds[t.Kind].format
		}
	}
	for i := range c.Components {
		comp := &c.Components[i]
		if len(comp.Branches) == 0 {
			comp.Branches = []string{DefaultBranch}
		}
		if comp.Rebuild == "" {
			comp.Rebuild = RebuildDirect
		}
		if comp.Versions == "" {
			comp.Versions = VersionsRebuild
		}
	}
	for i := range c.Workers {
		if c.Workers[i].Slots == 0 {
			c.Workers[i].Slots = 1
		}
	}
}

// Position returns where the value at a key path (e.g. "components[3].depends")
// was written, or of its nearest enclosing key; ok is false for hand-built
// configs and paths that were never written.
func (c *Config) Position(path string) (p Pos, ok bool) {
	for path != "" {
		if p, ok := c.pos[path]; ok {
			return p, true
		}
		i := max(strings.LastIndexByte(path, '.'), strings.LastIndexByte(path, '['))
		if i < 0 {
			break
		}
		path = path[:i]
	}
	if len(c.Files) == 1 {
		return Pos{File: c.Files[0]}, false
	}
	return Pos{}, false
}
