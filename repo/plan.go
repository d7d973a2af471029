package repo

import (
	"fmt"
	"sort"
	"strings"

	"github.com/kiln-build/kiln/repo/pkgmeta"
)

// aptDist is one dists/<codename> of one distro's archive: all of its
// architectures' targets together.
type aptDist struct {
	distro, codename, key string
	targets               []TargetContents
}

// plan is a validated publish request, grouped the way trees are written.
type plan struct {
	dists   []*aptDist
	yum     []TargetContents
	dropped []string
}

func (p *Publisher) plan(c ChannelContents) (*plan, error) {
	pl := &plan{}
	seen := map[string]bool{}
	dists := map[string]*aptDist{}
	for _, tc := range c.Targets {
		t := tc.Target
		if err := t.validate(); err != nil {
			return nil, err
		}
		id := string(t.Format) + "/" + t.String()
		if seen[id] {
			return nil, fmt.Errorf("%w: target %s listed twice", ErrInvalid, t)
		}
		seen[id] = true
		for _, pkg := range tc.Packages {
			if err := checkPackage(t, pkg); err != nil {
				return nil, err
			}
		}
		kept, dropped := retain(tc.Packages, p.opts.KeepPackageVersions)
		for _, d := range dropped {
			pl.dropped = append(pl.dropped, t.String()+": "+d.String())
		}
		tc.Packages = kept
		if t.Format == pkgmeta.RPM {
			pl.yum = append(pl.yum, tc)
			continue
		}
		key := t.Distro + "/" + t.codename()
		d := dists[key]
		if d == nil {
			d = &aptDist{distro: t.Distro, codename: t.codename(), key: t.Key}
			dists[key] = d
			pl.dists = append(pl.dists, d)
		}
		if d.key != t.Key {
			return nil, fmt.Errorf("%w: %s signed with both %q and %q", ErrInvalid, key, d.key, t.Key)
		}
		d.targets = append(d.targets, tc)
	}
	return pl, nil
}

func checkPackage(t Target, pkg *pkgmeta.Package) error {
	if pkg == nil {
		return fmt.Errorf("%w: target %s: nil package", ErrInvalid, t)
	}
	if err := pkgmeta.CheckFileName(pkg.FileName); err != nil {
		return fmt.Errorf("%w: target %s: %w", ErrInvalid, t, err)
	}
	if err := pkgmeta.Check(pkg, pkgmeta.Expect{Format: t.Format, Arch: t.Arch}); err != nil {
		return fmt.Errorf("%w: target %s: %w", ErrInvalid, t, err)
	}
	if pkg.Format == pkgmeta.Deb && (pkg.Source == "" || strings.ContainsAny(pkg.Source, "/\\")) {
		return fmt.Errorf("%w: target %s: %s: bad source name %q", ErrInvalid, t, pkg.FileName, pkg.Source)
	}
	if pkg.Format == pkgmeta.RPM && pkg.RPM == nil {
		return fmt.Errorf("%w: target %s: %s: no rpm metadata", ErrInvalid, t, pkg.FileName)
	}
	return nil
}

// retain keeps the newest n versions of each package name and architecture
// (n < 0 keeps all) and returns the rest as dropped.
func retain(pkgs []*pkgmeta.Package, n int) (kept, dropped []*pkgmeta.Package) {
	groups := map[string][]*pkgmeta.Package{}
	var order []string
	for _, p := range pkgs {
		k := p.Name + "\x00" + p.Arch
		if groups[k] == nil {
			order = append(order, k)
		}
		groups[k] = append(groups[k], p)
	}
	for _, k := range order {
		g := groups[k]
		sort.SliceStable(g, func(i, j int) bool { return pkgmeta.Compare(g[i], g[j]) > 0 })
		if n >= 0 && len(g) > n {
			dropped = append(dropped, g[n:]...)
			g = g[:n]
		}
		kept = append(kept, g...)
	}
	return kept, dropped
}
