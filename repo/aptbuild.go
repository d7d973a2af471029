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
	for _, arch := range archs {
		pkgs := archPackages(d, arch)
		dir := path.Join(apt.Component, "binary-"+arch)
		ids := make([]string, len(pkgs))
		for i, p := range pkgs {
			ids[i] = p.SHA256 + " " + b.loc[p]
		}
		key := fingerprint(append([]string{"apt", dists, arch}, ids...)...)
		files, ok := b.cache.get(b.p.st, key)
		if !ok {
			var chunks []string
			var err error
			if files, chunks, err = b.renderPackages(path.Join(dists, dir), pkgs, ids); err != nil {
				return fmt.Errorf("apt %s %s: %w", dists, arch, err)
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
		if err := b.carryByHash(path.Join(dists, dir)); err != nil {
			return err
		}
	}
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
	plain := r.plain()
	sum, err := b.p.st.putSummed(plain, r.sum)
	if err != nil {
		return nil, nil, err
	}
	files := []cachedFile{{path: path.Join(dir, packagesNames[0]), sum: sum, size: r.size}}
	for i, data := range [][]byte{r.gz, r.xz} {
		f, err := b.index(path.Join(dir, packagesNames[i+1]), data)
		if err != nil {
			return nil, nil, err
		}
		files = append(files, f)
	}
	return files, r.keys, nil
}

// carryByHash keeps the served version's Packages files reachable under
// by-hash in the new version, so a client that read the old InRelease just
// before the switch still finds the indexes it names.
func (b *build) carryByHash(dir string) error {
	if b.prev == "" {
		return nil
	}
	old := filepath.Join(b.prev, filepath.FromSlash(dir))
	var olds []os.FileInfo
	for _, name := range packagesNames {
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
