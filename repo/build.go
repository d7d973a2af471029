package repo

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/kiln-build/kiln/repo/apt"
	"github.com/kiln-build/kiln/repo/pkgmeta"
	"github.com/kiln-build/kiln/repo/yum"
)

// poolDir is the channel's shared, append-only package pool. Version trees
// reach it through one symlink per archive, so a publish adds links only
// for new packages instead of relinking every package of the channel.
const poolDir = "pool"

// build is the state of one publish while its tree is being filled.
type build struct {
	p       *Publisher
	t       *tree
	cache   *indexCache
	channel string
	prev    string // absolute path of the served version, "" if none
	now     time.Time
	pool    map[string]string // pool path (channel-relative) → sha256, "-" for other content
	loc     map[*pkgmeta.Package]string
}

// fill places the package files in the pool, writes every index into t
// and returns the manifest. Indexes of different trees render concurrently.
func (p *Publisher) fill(ctx context.Context, channel string, t *tree, pl *plan, prev string, now time.Time) ([]ManifestTarget, error) {
	c := p.caches[channel]
	if c == nil {
		c = &indexCache{}
		p.caches[channel] = c
	}
	if p.pools[channel] == nil {
		p.pools[channel] = map[string]string{}
	}
	c.begin()
	b := &build{p: p, t: t, cache: c, channel: channel, prev: prev, now: now, pool: p.pools[channel], loc: map[*pkgmeta.Package]string{}}

	var all []TargetContents
	for _, d := range pl.dists {
		all = append(all, d.targets...)
	}
	all = append(all, pl.yum...)
	manifest := make([]ManifestTarget, len(all))
	for i, tc := range all {
		mt, err := b.placePackages(ctx, tc)
		if err != nil {
			return nil, err
		}
		manifest[i] = mt
		if err := b.manifestFile(tc.Target, mt); err != nil {
			return nil, err
		}
	}

	var wg sync.WaitGroup
	errs := make([]error, len(pl.dists)+len(pl.yum))
	for i, d := range pl.dists {
		wg.Go(func() { errs[i] = b.aptDist(ctx, d) })
	}
	for i, tc := range pl.yum {
		wg.Go(func() { errs[len(pl.dists)+i] = b.yumRepo(ctx, tc) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	c.end()
	return manifest, nil
}

// placePackages makes sure every package of a target is in the store and
// the pool, and links the target's pool directory into the version.
func (b *build) placePackages(ctx context.Context, tc TargetContents) (ManifestTarget, error) {
	t := tc.Target
	mt := ManifestTarget{Target: t}
	sub := "Packages"
	if t.Format == pkgmeta.Deb {
		sub = path.Join("pool", t.codename())
	}
	shared := path.Join(poolDir, t.Dir(), sub)
	if err := os.MkdirAll(filepath.Join(b.p.channelDir(b.channel), filepath.FromSlash(shared)), 0o755); err != nil {
		return mt, fmt.Errorf("pool %s: %w", shared, err)
	}
	// From <version>/<dir>/<sub> back up to the channel directory.
	up := strings.Repeat("../", strings.Count(path.Join(t.Dir(), sub), "/")+1)
	b.t.symlink(path.Join(t.Dir(), sub), up+shared)
	if t.Format == pkgmeta.RPM {
		b.t.symlink(path.Join(t.Dir(), YumDebugDir, sub), "../"+up+shared)
	}
	for _, pkg := range tc.Packages {
		if err := ctx.Err(); err != nil {
			return mt, err
		}
		var canon string
		if t.Format == pkgmeta.Deb {
			canon = apt.PoolPath(t.codename(), pkg)
		} else {
			canon = yum.Location(pkg)
		}
		if pkg.IsSource() && pkg.Format == pkgmeta.Deb {
			entries, err := b.placeSource(t.Dir(), canon, pkg)
			if err != nil {
				return mt, err
			}
			mt.Packages = append(mt.Packages, entries...)
			continue
		}
		rel, err := b.poolPath(t.Dir(), canon, pkg)
		if err != nil {
			return mt, err
		}
		b.loc[pkg] = rel
		mt.Packages = append(mt.Packages, ManifestEntry{Name: pkg.Name, Version: pkg.FullVersion(), Arch: pkg.Arch,
			Path: t.Dir() + "/" + rel, SHA256: pkg.SHA256, Size: pkg.Size})
	}
	return mt, nil
}

// placeSource puts a source package's .dsc and the files it lists into one
// pool directory, which its Sources stanza names: the canonical one, or,
// when any of its names there holds other bytes (another build's orig made
// from the tree, say), a sha256 directory of its own. It returns the
// manifest entries of all its files, the .dsc first, so that pruning keeps
// each of them.
func (b *build) placeSource(dir, canon string, pkg *pkgmeta.Package) ([]ManifestEntry, error) {
	if pkg.Path == "" {
		return nil, fmt.Errorf("%w: %s: no file", ErrInvalid, pkg.FileName)
	}
	files := []*pkgmeta.Package{{FileName: pkg.FileName, SHA256: pkg.SHA256, Size: pkg.Size, Path: pkg.Path}}
	for _, f := range pkg.Files {
		if f.Path == "" {
			return nil, fmt.Errorf("%w: %s: no file for %s", ErrInvalid, pkg.FileName, f.Name)
		}
		files = append(files, &pkgmeta.Package{FileName: f.Name, SHA256: f.SHA256, Size: f.Size, Path: f.Path})
	}
	for _, sub := range []string{path.Dir(canon), path.Join(path.Dir(canon), "sha256-"+pkg.SHA256[:16])} {
		ok, err := b.claimAll(dir, sub, files)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		b.loc[pkg] = path.Join(sub, pkg.FileName)
		entries := make([]ManifestEntry, len(files))
		for i, f := range files {
			entries[i] = ManifestEntry{Name: pkg.Name, Version: pkg.FullVersion(), Arch: pkg.Arch,
				Path: dir + "/" + path.Join(sub, f.FileName), SHA256: f.SHA256, Size: f.Size}
		}
		return entries, nil
	}
	return nil, fmt.Errorf("%w: %s: pool directory %s taken by other files", ErrInvalid, pkg.FileName, path.Dir(canon))
}

// claimAll places every file under dir/sub, or reports false when a name
// there holds other bytes. Files placed before such a conflict stay: pool
// files are never overwritten, and pruning drops what no version lists.
func (b *build) claimAll(dir, sub string, files []*pkgmeta.Package) (bool, error) {
	for _, f := range files {
		key := dir + "/" + path.Join(sub, f.FileName)
		if sum, ok := b.pool[key]; ok {
			if sum != f.SHA256 {
				return false, nil
			}
			continue
		}
		ok, err := b.claim(key, f)
		if err != nil || !ok {
			return false, err
		}
	}
	return true, nil
}

// poolPath returns where pkg lives under dir: its canonical path, or, when
// a different file already holds that name (a rebuild of the same version
// while the old build is still served by a kept version), a path with a
// sha256 directory. Pool files are never overwritten.
func (b *build) poolPath(dir, canon string, pkg *pkgmeta.Package) (string, error) {
	rel := canon
	for range 2 {
		key := dir + "/" + rel
		if sum, ok := b.pool[key]; ok {
			if sum == pkg.SHA256 {
				return rel, nil
			}
			rel = path.Join(path.Dir(canon), "sha256-"+pkg.SHA256[:16], path.Base(canon))
			continue
		}
		ok, err := b.claim(key, pkg)
		if err != nil {
			return "", err
		}
		if ok {
			return rel, nil
		}
		rel = path.Join(path.Dir(canon), "sha256-"+pkg.SHA256[:16], path.Base(canon))
	}
	return "", fmt.Errorf("%w: %s: pool paths %s taken by other files", ErrInvalid, pkg.FileName, canon)
}

// claim looks at a pool path the in-memory view does not know yet: it is
// pkg's if free (then linked) or already the same file.
func (b *build) claim(key string, pkg *pkgmeta.Package) (bool, error) {
	abs := filepath.Join(b.p.channelDir(b.channel), poolDir, filepath.FromSlash(key))
	fi, err := os.Lstat(abs)
	if errors.Is(err, os.ErrNotExist) {
		if err := b.p.st.putFile(pkg.Path, pkg.SHA256, pkg.Size); err != nil {
			return false, err
		}
		if err := b.p.st.link(pkg.SHA256, abs); err != nil {
			return false, err
		}
		b.pool[key] = pkg.SHA256
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("pool %s: %w", key, err)
	}
	obj, err := os.Lstat(b.p.st.object(pkg.SHA256))
	if err == nil && os.SameFile(fi, obj) {
		b.pool[key] = pkg.SHA256
		return true, nil
	}
	b.pool[key] = "-"
	return false, nil
}

// manifestFile records a target's package list in the version as gzip'd
// JSON lines (the target, then one package per line), rendered in cached
// chunks like the indexes so a large unchanged list costs no encoding.
func (b *build) manifestFile(t Target, mt ManifestTarget) error {
	name := path.Join(".kiln", manifestName(t))
	ids := make([]string, len(mt.Packages))
	for i, e := range mt.Packages {
		ids[i] = e.SHA256 + " " + e.Path + " " + e.Version
	}
	key := fingerprint(append([]string{"manifest", name}, ids...)...)
	files, ok := b.cache.get(b.p.st, key)
	if ok {
		return b.place(files)
	}
	header, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("manifest of %s: %w", t, err)
	}
	var lineErr error
	r, err := b.renderChunked(chunkSpec{
		kind: "manifest",
		n:    len(mt.Packages),
		name: func(i int) string { return mt.Packages[i].Name },
		id:   func(i int) string { return ids[i] },
		render: func(buf *bytes.Buffer, i int) {
			line, err := json.Marshal(mt.Packages[i])
			if err != nil {
				lineErr = err
			}
			buf.Write(line)
			buf.WriteByte('\n')
		},
	}, append(header, '\n'), nil)
	if err == nil {
		err = lineErr
	}
	if err != nil {
		return fmt.Errorf("manifest of %s: %w", t, err)
	}
	f, err := b.index(name, r.gz)
	if err != nil {
		return err
	}
	b.cache.put(key, []cachedFile{f}, r.keys)
	return b.place([]cachedFile{f})
}

func manifestName(t Target) string {
	return fmt.Sprintf("%s_%s_%s_%s.jsonl.gz", t.Format, t.Distro, t.Version, t.Arch)
}

// readManifestFile reads what manifestFile wrote.
func readManifestFile(file string) (ManifestTarget, error) {
	var mt ManifestTarget
	f, err := os.Open(file)
	if err != nil {
		return mt, err
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		return mt, fmt.Errorf("%s: %w", file, err)
	}
	dec := json.NewDecoder(z)
	if err := dec.Decode(&mt.Target); err != nil {
		return mt, fmt.Errorf("%s: %w", file, err)
	}
	for {
		var e ManifestEntry
		err := dec.Decode(&e)
		if errors.Is(err, io.EOF) {
			return mt, nil
		}
		if err != nil {
			return mt, fmt.Errorf("%s: %w", file, err)
		}
		mt.Packages = append(mt.Packages, e)
	}
}

// place records cached or fresh index files in the tree.
func (b *build) place(files []cachedFile) error {
	for _, f := range files {
		if err := b.t.add(f.path, f.sum); err != nil {
			return err
		}
	}
	return nil
}

// index stores one index file and returns its record.
func (b *build) index(rel string, data []byte) (cachedFile, error) {
	sum, err := b.p.st.putBytes(data)
	if err != nil {
		return cachedFile{}, err
	}
	return cachedFile{path: rel, sum: sum, size: int64(len(data))}, nil
}

// archPackages lists what <component>/binary-<arch>/Packages shows: the
// arch's own packages of the component plus its Architecture: all packages
// of the dist, each file once.
func archPackages(d *aptDist, component, arch string) []*pkgmeta.Package {
	return distPackages(d, func(p *pkgmeta.Package) bool {
		return (p.Arch == arch || p.IsArchIndependent()) && apt.ComponentOf(p) == component
	}, func(p *pkgmeta.Package) string { return p.FileName })
}

// distPackages lists the packages of a dist's targets that keep takes,
// the first of each key in architecture order, sorted as indexes list
// them.
func distPackages(d *aptDist, keep func(*pkgmeta.Package) bool, key func(*pkgmeta.Package) string) []*pkgmeta.Package {
	seen := map[string]bool{}
	var out []*pkgmeta.Package
	targets := append([]TargetContents(nil), d.targets...)
	sort.Slice(targets, func(i, j int) bool { return targets[i].Target.Arch < targets[j].Target.Arch })
	for _, tc := range targets {
		for _, p := range tc.Packages {
			if k := key(p); keep(p) && !seen[k] {
				seen[k] = true
				out = append(out, p)
			}
		}
	}
	sortPackages(out)
	return out
}

// sortPackages orders by name, version and architecture, as both index
// formats list packages.
func sortPackages(ps []*pkgmeta.Package) {
	sort.SliceStable(ps, func(i, j int) bool {
		if ps[i].Name != ps[j].Name {
			return ps[i].Name < ps[j].Name
		}
		if c := pkgmeta.Compare(ps[i], ps[j]); c != 0 {
			return c < 0
		}
		return ps[i].Arch < ps[j].Arch
	})
}

func (b *build) sign(ctx context.Context, key string, data []byte, clear bool) ([]byte, error) {
	if clear {
		out, err := b.p.signer.Clearsign(ctx, key, data)
		if err != nil {
			return nil, fmt.Errorf("clearsign with key %q: %w", key, err)
		}
		return out, nil
	}
	out, err := b.p.signer.DetachSign(ctx, key, data)
	if err != nil {
		return nil, fmt.Errorf("sign with key %q: %w", key, err)
	}
	return out, nil
}
