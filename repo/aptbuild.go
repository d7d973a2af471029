package repo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/kiln-build/kiln/repo/apt"
	"github.com/kiln-build/kiln/repo/pkgmeta"
)

var packagesNames = []string{"Packages", "Packages.gz", "Packages.xz"}

// aptDist writes dists/<codename> of one distro's archive: a Packages set per
// architecture with by-hash copies, then Release, InRelease and Release.gpg.
func (b *build) aptDist(ctx context.Context, d *aptDist) error {
	root := path.Join("apt", d.distro)
	dists := path.Join(root, "dists", d.codename)
	var archs []string
	for _, tc := range d.targets {
		archs = append(archs, tc.Target.Arch)
	}
	sort.Strings(archs)
	var listed []apt.IndexFile
	for _, ca := range componentArchs(archs) {
		component, arch := ca[0], ca[1]
		pkgs := archPackages(d, component, arch)
		dir := path.Join(component, "binary-"+arch)
		ids := make([]string, len(pkgs))
		for i, p := range pkgs {
			ids[i] = p.SHA256 + " " + b.loc[p]
		}
		key := fingerprint(append([]string{"apt", dists, component, arch}, ids...)...)
		files, ok := b.cache.get(b.p.st, key)
		if !ok {
			var chunks []string
			var err error
			if files, chunks, err = b.renderPackages(path.Join(dists, dir), pkgs, ids); err != nil {
				return fmt.Errorf("apt %s %s %s: %w", dists, component, arch, err)
			}
			b.cache.put(key, files, chunks)
		}
		if err := b.place(files); err != nil {
			return err
		}
		for _, f := range files {
			listed = append(listed, apt.IndexFile{Path: strings.TrimPrefix(f.path, dists+"/"), Size: f.size, SHA256: f.sum})
			if err := b.t.add(path.Join(dists, dir, "by-hash", "SHA256", f.sum), f.sum); err != nil {
				return err
			}
		}
		if err := b.carryByHash(path.Join(dists, dir), packagesNames); err != nil {
			return err
		}
	}
	srcFiles, err := b.aptSources(d, dists)
	if err != nil {
		return err
	}
	listed = append(listed, srcFiles...)
	release := apt.Release{
		Origin:        b.p.opts.Origin,
		Label:         b.p.opts.Label,
		Suite:         d.codename,
		Codename:      d.codename,
		Date:          b.now,
		ValidFor:      b.p.opts.ValidFor,
		Architectures: archs,
		Files:         listed,
	}.Bytes()
	inRelease, err := b.sign(ctx, d.key, release, true)
	if err != nil {
		return fmt.Errorf("apt %s: %w", dists, err)
	}
	releaseGPG, err := b.sign(ctx, d.key, release, false)
	if err != nil {
		return fmt.Errorf("apt %s: %w", dists, err)
	}
	for name, data := range map[string][]byte{"Release": release, "InRelease": inRelease, "Release.gpg": releaseGPG} {
		if _, err := b.t.addBytes(path.Join(dists, name), data); err != nil {
			return err
		}
	}
	return nil
}

// componentArchs pairs every component with every architecture: each has
// a Packages index, empty or not, so that a client opting into the debug
// component never meets a missing index.
func componentArchs(archs []string) [][2]string {
	var out [][2]string
	for _, c := range apt.Components {
		for _, a := range archs {
			out = append(out, [2]string{c, a})
		}
	}
	return out
}

var sourcesNames = []string{"Sources", "Sources.gz", "Sources.xz"}

// aptSources writes main/source/Sources of a dist, with by-hash copies, and
// returns the files for Release. Every dist has one, empty when no build
// published a source package, so that a deb-src line never fails.
func (b *build) aptSources(d *aptDist, dists string) ([]apt.IndexFile, error) {
	srcs := distSources(d)
	ids := make([]string, len(srcs))
	for i, p := range srcs {
		ids[i] = p.SHA256 + " " + b.loc[p]
	}
	dir := path.Join(apt.Component, "source")
	key := fingerprint(append([]string{"apt-sources", dists}, ids...)...)
	files, ok := b.cache.get(b.p.st, key)
	if !ok {
		r, err := b.renderChunked(chunkSpec{
			kind:   "Sources",
			n:      len(srcs),
			name:   func(i int) string { return srcs[i].Name },
			id:     func(i int) string { return ids[i] },
			render: func(buf *bytes.Buffer, i int) { apt.SourceParagraph(buf, srcs[i], path.Dir(b.loc[srcs[i]])) },
			xz:     true,
		}, nil, nil)
		if err != nil {
			return nil, fmt.Errorf("apt %s sources: %w", dists, err)
		}
		if files, err = b.indexSet(path.Join(dists, dir), sourcesNames, r); err != nil {
			return nil, fmt.Errorf("apt %s sources: %w", dists, err)
		}
		b.cache.put(key, files, r.keys)
	}
	if err := b.place(files); err != nil {
		return nil, err
	}
	var listed []apt.IndexFile
	for _, f := range files {
		listed = append(listed, apt.IndexFile{Path: strings.TrimPrefix(f.path, dists+"/"), Size: f.size, SHA256: f.sum})
		if err := b.t.add(path.Join(dists, dir, "by-hash", "SHA256", f.sum), f.sum); err != nil {
			return nil, err
		}
	}
	return listed, b.carryByHash(path.Join(dists, dir), sourcesNames)
}

// distSources lists a dist's source packages, each name and version once
// (every architecture's build of a source makes its own .dsc; the first
// architecture's is listed).
func distSources(d *aptDist) []*pkgmeta.Package {
	return distPackages(d, (*pkgmeta.Package).IsSource, func(p *pkgmeta.Package) string { return p.Name + " " + p.Version })
}

// indexSet stores a rendered index as names[0] (plain), names[1] (gzip)
// and names[2] (xz) in dir.
func (b *build) indexSet(dir string, names []string, r *rendered) ([]cachedFile, error) {
	sum, err := b.p.st.putSummed(r.plain(), r.sum)
	if err != nil {
		return nil, err
	}
	files := []cachedFile{{path: path.Join(dir, names[0]), sum: sum, size: r.size}}
	for i, data := range [][]byte{r.gz, r.xz} {
		f, err := b.index(path.Join(dir, names[i+1]), data)
		if err != nil {
			return nil, err
		}
		files = append(files, f)
	}
	return files, nil
}

// renderPackages writes Packages and its compressed forms for one architecture.
func (b *build) renderPackages(dir string, pkgs []*pkgmeta.Package, ids []string) ([]cachedFile, []string, error) {
	r, err := b.renderChunked(chunkSpec{
		kind:   "Packages",
		n:      len(pkgs),
		name:   func(i int) string { return pkgs[i].Name },
		id:     func(i int) string { return ids[i] },
		render: func(buf *bytes.Buffer, i int) { apt.Paragraph(buf, pkgs[i], b.loc[pkgs[i]]) },
		xz:     true,
	}, nil, nil)
	if err != nil {
		return nil, nil, err
	}
	files, err := b.indexSet(dir, packagesNames, r)
	if err != nil {
		return nil, nil, err
	}
	return files, r.keys, nil
}

// carryByHash keeps the served version's index files (names) reachable
// under by-hash in the new version, so a client that read the old
// InRelease just before the switch still finds the indexes it names.
func (b *build) carryByHash(dir string, names []string) error {
	if b.prev == "" {
		return nil
	}
	old := filepath.Join(b.prev, filepath.FromSlash(dir))
	var olds []os.FileInfo
	for _, name := range names {
		if fi, err := os.Stat(filepath.Join(old, name)); err == nil {
			olds = append(olds, fi)
		}
	}
	entries, err := os.ReadDir(filepath.Join(old, "by-hash", "SHA256"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("carry by-hash of %s: %w", dir, err)
	}
	for _, e := range entries {
		from := filepath.Join(old, "by-hash", "SHA256", e.Name())
		fi, err := os.Stat(from)
		if err != nil {
			return fmt.Errorf("carry by-hash of %s: %w", dir, err)
		}
		for _, o := range olds {
			if os.SameFile(fi, o) {
				b.t.carry(path.Join(dir, "by-hash", "SHA256", e.Name()), from)
			}
		}
	}
	return nil
}
