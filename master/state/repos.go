package state

import (
	"slices"
	"time"

	"github.com/kiln-build/kiln/repo/pkgmeta"
)

// RepoPackage is one package file a channel's target lists. Its metadata was
// read once, when the build that made it finished; publishing reuses it.
// Package.Path is not kept: where the file lives is each master's own
// business (its data directory), not replicated fact.
type RepoPackage struct {
	Build int64 `json:"build"`
	// Builder made it: a rebuild looks up the versions its builder has
	// published (empty in records older than the field).
	Builder string `json:"builder,omitempty"`
	// Published is when clients could first fetch it from the channel.
	Published time.Time        `json:"published"`
	Package   *pkgmeta.Package `json:"package"`
}

// RepoTarget is what one target of a channel lists, and when the channel
// last published it.
type RepoTarget struct {
	Packages  []RepoPackage `json:"packages"`
	Published time.Time     `json:"published,omitzero"`
	Version   string        `json:"version,omitempty"` // the channel version that served it
}

// PublishCmd records a channel publish: the packages a build added to one
// target, those retention dropped, and the version now served. With Build
// set it belongs to that build's result and applies only while that attempt
// still runs, like the FinishCmd logged beside it.
type PublishCmd struct {
	Channel string    `json:"channel"`
	Version string    `json:"version"`
	Time    time.Time `json:"time"`
	// Targets are every target the publish wrote (the whole channel).
	Targets []string `json:"targets"`
	// Target receives Add.
	Target  string        `json:"target,omitempty"`
	Add     []RepoPackage `json:"add,omitempty"`
	Build   int64         `json:"build,omitempty"`
	Attempt int           `json:"attempt,omitempty"`
	// Remove lists, per target, the sha256 of packages no longer listed.
	Remove map[string][]string `json:"remove,omitempty"`
}

func (f *FSM) publish(c *PublishCmd) Outcome {
	if c.Build != 0 {
		if _, out, ok := f.current(c.Build, c.Attempt); !ok {
			return out
		}
	}
	ch := f.repos[c.Channel]
	if ch == nil {
		ch = map[string]*RepoTarget{}
		f.repos[c.Channel] = ch
	}
	get := func(t string) *RepoTarget {
		rt := ch[t]
		if rt == nil {
			rt = &RepoTarget{}
			ch[t] = rt
		}
		return rt
	}
	for t, shas := range c.Remove {
		rt := get(t)
		rt.Packages = slices.DeleteFunc(rt.Packages, func(p RepoPackage) bool { return slices.Contains(shas, p.Package.SHA256) })
	}
	if len(c.Add) > 0 {
		rt := get(c.Target)
		// A rebuild at the same version replaces the file it rebuilt:
		// a name, version and architecture lists one file.
		rt.Packages = slices.DeleteFunc(rt.Packages, func(p RepoPackage) bool {
			return slices.ContainsFunc(c.Add, func(a RepoPackage) bool { return SamePackage(a.Package, p.Package) })
		})
		rt.Packages = append(rt.Packages, c.Add...)
	}
	for _, t := range c.Targets {
		rt := get(t)
		rt.Published, rt.Version = c.Time, c.Version
	}
	return Outcome{}
}

// SamePackage reports whether a and b are the same name, version and
// architecture, which a repository lists once.
func SamePackage(a, b *pkgmeta.Package) bool {
	return a.Name == b.Name && a.Arch == b.Arch && a.FullVersion() == b.FullVersion()
}

// RepoChannel returns a channel's targets. The package lists are copies;
// the *pkgmeta.Package values are shared and must not be modified.
func (f *FSM) RepoChannel(channel string) map[string]RepoTarget {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := make(map[string]RepoTarget, len(f.repos[channel]))
	for t, rt := range f.repos[channel] {
		c := *rt
		c.Packages = slices.Clone(rt.Packages)
		out[t] = c
	}
	return out
}

// RepoPackages returns what one target of a channel lists, a copy; the
// *pkgmeta.Package values are shared and must not be modified. Cheaper
// than RepoChannel for a question about one target (every dispatched job
// asks one).
func (f *FSM) RepoPackages(channel, target string) []RepoPackage {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if rt := f.repos[channel][target]; rt != nil {
		return slices.Clone(rt.Packages)
	}
	return nil
}

// repoRecord is one channel target in a snapshot.
type repoRecord struct {
	Channel string     `json:"channel"`
	Target  string     `json:"target"`
	Repo    RepoTarget `json:"repo"`
}

func (f *FSM) snapshotRepos(buf *jsonLines) {
	for _, ch := range sortedKeys(f.repos) {
		for _, t := range sortedKeys(f.repos[ch]) {
			buf.put(repoRecord{Channel: ch, Target: t, Repo: *f.repos[ch][t]})
		}
	}
}

func (f *FSM) repoCount() int {
	n := 0
	for _, ch := range f.repos {
		n += len(ch)
	}
	return n
}

func (f *FSM) restoreRepo(r *repoRecord) {
	ch := f.repos[r.Channel]
	if ch == nil {
		ch = map[string]*RepoTarget{}
		f.repos[r.Channel] = ch
	}
	rt := r.Repo
	ch[r.Target] = &rt
}
