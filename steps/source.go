package steps

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/kiln-build/kiln/protocol"
)

// Source makes the source package the chroot builders (pbuilder, mock)
// start from. For apt targets: dpkg-source -b on a copy of the tree with a
// debian/ directory (version from debian/changelog); for yum targets: the
// tarball the spec's Source0 names, made from the tree, and rpmbuild -bs.
//
// with: tree (the checkout, default "."), dir (output, default
// "dist/source"), spec (yum: default the only *.spec at the top of the
// tree). For apt's non-native formats the orig tarball comes from the
// repository's pristine-tar branch, else its upstream tag (upstream_tag:
// gbp's format, default upstream/%(version)s), else orig (a file in the
// workspace) or orig_url with orig_sha256 (and orig_asc_url), else the
// tree (origSource). Sets source_name, source_version and dsc or srpm
// (workspace-relative).
type Source struct{}

func (Source) Run(ctx context.Context, env *Env, spec protocol.Step) (Outcome, error) {
	switch env.Job.Format {
	case "apt":
		return debSourcePackage(ctx, env, spec)
	case "yum":
		return rpmSourcePackage(ctx, env, spec)
	}
	return fail(fmt.Errorf("source: job format %q: want apt or yum", env.Job.Format))
}

// sourceStage is where the source step works: under .kiln/, which copies
// and tarballs of the tree leave out.
const sourceStage = ".kiln/source"

func debSourcePackage(ctx context.Context, env *Env, spec protocol.Step) (Outcome, error) {
	stage, err := env.Path(sourceStage)
	if err != nil {
		return fail(fmt.Errorf("source: %w", err))
	}
	src, err := stageDebian(ctx, env, spec, stage)
	if err != nil {
		return fail(fmt.Errorf("source: %w", err))
	}
	out, err := runTool(ctx, env, sourceStage, spec.Timeout, nil, "dpkg-source", "-b", filepath.Base(src.Tree))
	if err != nil {
		return fail(out.failure("dpkg-source", err, ErrBuildFailed))
	}
	if err := os.RemoveAll(src.Tree); err != nil {
		return fail(fmt.Errorf("source: %w", err))
	}
	// Made only now, so that the staged copy did not contain it.
	outDir, err := stepDir(env, spec.With, "dir", "dist/source")
	if err != nil {
		return fail(fmt.Errorf("source: %w", err))
	}
	if _, err := moveResults(stage, outDir, "*.dsc", "*.tar.*"); err != nil {
		return fail(fmt.Errorf("source: %w", err))
	}
	dsc := filepath.Join(outDir, src.Name+"_"+stripEpoch(src.Version)+".dsc")
	if _, err := os.Stat(dsc); err != nil {
		return fail(fmt.Errorf("source: dpkg-source left no %s: %w", filepath.Base(dsc), err))
	}
	env.Props.Set("source_name", src.Name)
	env.Props.Set("source_version", src.Version)
	env.Props.Set("dsc", env.rel(dsc))
	summary := fmt.Sprintf("%s %s (%s)", src.Name, src.Version, src.Format)
	if src.Orig != "" {
		summary += ", " + src.Orig
	}
	return Outcome{Summary: summary}, nil
}

func rpmSourcePackage(ctx context.Context, env *Env, spec protocol.Step) (Outcome, error) {
	rs, err := prepareRPM(ctx, env, spec)
	if err != nil {
		return fail(fmt.Errorf("source: %w", err))
	}
	// Build requirements are the chroot's business (mock installs them);
	// the host only packs the sources.
	out, err := runTool(ctx, env, ".", spec.Timeout, nil, rs.rpmbuild("-bs", "--nodeps", rs.Spec)...)
	if err != nil {
		return fail(out.failure("rpmbuild -bs", err, ErrBuildFailed))
	}
	outDir, err := stepDir(env, spec.With, "dir", "dist/source")
	if err != nil {
		return fail(fmt.Errorf("source: %w", err))
	}
	if _, err := moveResults(filepath.Join(rs.Topdir, "SRPMS"), outDir, "*.src.rpm"); err != nil {
		return fail(fmt.Errorf("source: rpmbuild -bs: %w", err))
	}
	srpm := filepath.Join(outDir, fmt.Sprintf("%s-%s-%s.src.rpm", rs.Name, rs.Version, rs.Release))
	if _, err := os.Stat(srpm); err != nil {
		return fail(fmt.Errorf("source: rpmbuild -bs left no %s: %w", filepath.Base(srpm), err))
	}
	env.Props.Set("source_name", rs.Name)
	env.Props.Set("source_version", rs.Version+"-"+rs.Release)
	env.Props.Set("srpm", env.rel(srpm))
	return Outcome{Summary: fmt.Sprintf("%s %s-%s", rs.Name, rs.Version, rs.Release)}, nil
}

// debSource is a copy of the tree staged for dpkg-source or
// dpkg-buildpackage, which both write their results into the tree's parent:
// the checkout is the workspace itself, whose parent is not ours.
type debSource struct {
	Name, Version, Format string
	Tree                  string // absolute: PARENT/NAME-UPSTREAM
	Orig                  string // where the orig tarball came from, for the summary; "" without one
	// Top is the staged changelog's top entry (the snapshot's, if any):
	// a binNMU continues its distribution and maintainer.
	Top changelogEntry
}

// stageDebian reads debian/changelog and debian/source/format from the
// tree and copies it (without .git; with .pc, which tells dpkg-source the
// patches are applied) to parent/NAME-UPSTREAM, with the orig tarball and
// its signature next to it when the format needs one (origSource).
func stageDebian(ctx context.Context, env *Env, spec protocol.Step, parent string) (debSource, error) {
	var src debSource
	treeRel := withDefault(spec.With["tree"], ".")
	tree, err := env.Path(treeRel)
	if err != nil {
		return src, fmt.Errorf("tree: %w", err)
	}
	if fi, err := os.Stat(filepath.Join(tree, "debian")); err != nil || !fi.IsDir() {
		return src, fmt.Errorf("%w: no debian/ directory in %s", ErrNoPackaging, treeRel)
	}
	out, err := runTool(ctx, env, treeRel, spec.Timeout, nil, "dpkg-parsechangelog", "-l", "debian/changelog")
	src.Name, src.Version = out.field("Source"), out.field("Version")
	if err != nil || src.Name == "" || src.Version == "" {
		why := out.firstLine("error:", "warning:")
		if why == "" && err != nil {
			why = err.Error()
		}
		return src, fmt.Errorf("%w: %s", ErrBadChangelog, why)
	}
	top := changelogEntry{Source: src.Name, Version: src.Version, Distribution: out.field("Distribution"), Maintainer: out.field("Maintainer")}
	src.Format = "1.0"
	if b, err := os.ReadFile(filepath.Join(tree, "debian/source/format")); err == nil {
		src.Format = strings.TrimSpace(string(b))
	}
	upstream, revision := splitDebVersion(src.Version)
	hasRevision := revision != ""
	native := src.Format == "3.0 (native)"
	if native && hasRevision {
		return src, fmt.Errorf("%w: format %s but version %s has a Debian revision (%s)", ErrBadChangelog, src.Format, src.Version, revision)
	}
	// dpkg-source would ask for an orig tarball first, which the step
	// makes only for a version with a revision, and then refuse the
	// version: name the actual mistake.
	if src.Format == "3.0 (quilt)" && !hasRevision {
		return src, fmt.Errorf("%w: format %s but version %s has no Debian revision (such as -1)", ErrBadChangelog, src.Format, src.Version)
	}
	snapshot, err := debSnapshot(env, tree, top)
	if err != nil {
		return src, err
	}
	src.Top = top
	if snapshot != nil {
		src.Top = *snapshot
		src.Version = snapshot.Version
		upstream, _ = splitDebVersion(src.Version)
	}
	src.Tree = filepath.Join(parent, src.Name+"-"+upstream)
	if err := os.RemoveAll(src.Tree); err != nil {
		return src, fmt.Errorf("stage: %w", err)
	}
	if err := copyTree(tree, src.Tree, ".git", ".kiln"); err != nil {
		return src, fmt.Errorf("stage: %w", err)
	}
	if snapshot != nil {
		if err := prependChangelog(filepath.Join(src.Tree, "debian/changelog"), *snapshot); err != nil {
			return src, fmt.Errorf("stage: %w", err)
		}
		env.Logf("snapshot: %s", snapshot.Changes[0])
	}
	if native || !hasRevision {
		return src, nil
	}
	src.Orig, err = origSource(ctx, env, spec, tree, parent, src.Name, upstream)
	if err == nil {
		env.Logf("%s", src.Orig)
	}
	return src, err
}

// debSnapshot returns the changelog entry that makes a tree committed after
// its changelog's top entry (or under an UNRELEASED one) a snapshot
// version; nil when the tree is that entry as released, or the job keeps
// exact versions.
func debSnapshot(env *Env, tree string, top changelogEntry) (*changelogEntry, error) {
	if env.Job.ExactVersions {
		return nil, nil
	}
	n, hash, err := commitsAfter(tree, "debian/changelog")
	if err != nil {
		return nil, fmt.Errorf("snapshot version: %w", err)
	}
	if hash == "" {
		return nil, nil
	}
	v := snapshotVersion(top.Version, top.Distribution, n, hash)
	if v == "" {
		return nil, nil
	}
	e := top
	e.Version = v
	e.Date = sourceTime(env.Props)
	// Short enough for lintian's 80 columns with a long version.
	e.Changes = []string{fmt.Sprintf("Snapshot of %s, %d commit(s) after %s.", hash[:min(12, len(hash))], n, top.Version)}
	return &e, nil
}

// splitDebVersion splits a Debian version, without its epoch, into the
// upstream version and the Debian revision ("" for a native version).
func splitDebVersion(v string) (upstream, revision string) {
	upstream = stripEpoch(v)
	if i := strings.LastIndexByte(upstream, '-'); i >= 0 {
		return upstream[:i], upstream[i+1:]
	}
	return upstream, ""
}

func stripEpoch(v string) string {
	if i := strings.IndexByte(v, ':'); i >= 0 {
		return v[i+1:]
	}
	return v
}

// sourceTime stamps made tarballs with the commit's time, so one revision
// always yields the same tarball bytes (and a rebuilt orig the same hash).
func sourceTime(p *Properties) time.Time {
	if s, ok := p.Get("commit_time"); ok {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return time.Unix(n, 0)
		}
	}
	return time.Unix(0, 0)
}

// rpmSource is a spec and its Source0 tarball laid out under a private
// _topdir in the workspace (rpmbuild's default is the user's ~/rpmbuild).
type rpmSource struct {
	Name, Version, Release string
	Topdir                 string // absolute
	Spec                   string // absolute, under Topdir/SPECS
	Tree                   string // absolute, the checkout
}

// rpmbuild returns an rpmbuild argument vector with this source's _topdir.
func (rs rpmSource) rpmbuild(args ...string) []string {
	return append([]string{"rpmbuild", "--define", "_topdir " + rs.Topdir}, args...)
}

var reSource0 = regexp.MustCompile(`^Source0?\s*:\s*(\S+)`)

// prepareRPM finds the spec, reads it with rpmspec and makes the Source0
// tarball from the tree (top directory NAME-VERSION) unless the tree holds
// a file of that name already.
func prepareRPM(ctx context.Context, env *Env, spec protocol.Step) (rpmSource, error) {
	var rs rpmSource
	treeRel := withDefault(spec.With["tree"], ".")
	tree, err := env.Path(treeRel)
	if err != nil {
		return rs, fmt.Errorf("tree: %w", err)
	}
	rs.Tree = tree
	specPath, err := findSpec(env, tree, spec.With["spec"])
	if err != nil {
		return rs, err
	}
	out, err := runTool(ctx, env, treeRel, spec.Timeout, nil, "rpmspec", "-P", specPath)
	if err != nil {
		return rs, fmt.Errorf("%w: %s: %s", ErrBadSpec, filepath.Base(specPath), withDefault(out.firstLine("error:"), err.Error()))
	}
	rs.Name, rs.Version, rs.Release = out.field("Name"), out.field("Version"), out.field("Release")
	var source0 string
	for _, l := range out.kept() {
		if m := reSource0.FindStringSubmatch(l); m != nil {
			source0 = m[1]
			break
		}
	}
	if rs.Name == "" || rs.Version == "" || rs.Release == "" || source0 == "" {
		return rs, fmt.Errorf("%w: %s lacks Name, Version, Release or Source0", ErrBadSpec, filepath.Base(specPath))
	}
	rs.Topdir = filepath.Join(env.Workspace, ".kiln", "rpmbuild")
	for _, d := range []string{"SOURCES", "SPECS", "SRPMS", "RPMS", "BUILD", "BUILDROOT"} {
		if err := os.MkdirAll(filepath.Join(rs.Topdir, d), 0o755); err != nil {
			return rs, fmt.Errorf("rpm topdir: %w", err)
		}
	}
	rs.Spec = filepath.Join(rs.Topdir, "SPECS", filepath.Base(specPath))
	if err := copyFile(specPath, rs.Spec, 0o644); err != nil {
		return rs, err
	}
	if err := rpmRebuild(env, &rs, out.field("Epoch")); err != nil {
		return rs, err
	}
	// Source0 may be a URL; rpmbuild looks for its base name in SOURCES.
	tarball := filepath.Base(source0)
	dst := filepath.Join(rs.Topdir, "SOURCES", tarball)
	if _, err := os.Stat(filepath.Join(tree, tarball)); err == nil {
		return rs, copyFile(filepath.Join(tree, tarball), dst, 0o644)
	}
	if !strings.HasSuffix(tarball, ".tar.gz") && !strings.HasSuffix(tarball, ".tgz") {
		return rs, fmt.Errorf("%w: Source0 %s: only .tar.gz/.tgz can be made from the tree; commit the tarball or change Source0", ErrBadSpec, tarball)
	}
	env.Logf("making %s from the tree", tarball)
	return rs, writeTarGz(dst, tree, rs.Name+"-"+rs.Version, sourceTime(env.Props), ".git", ".kiln")
}

// findSpec returns the spec named by with: spec, else the only *.spec at
// the top of the tree.
func findSpec(env *Env, tree, named string) (string, error) {
	if named != "" {
		p, err := env.Path(named)
		if err != nil {
			return "", fmt.Errorf("spec: %w", err)
		}
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%w: spec %s: %w", ErrNoPackaging, named, err)
		}
		return p, nil
	}
	specs, _ := filepath.Glob(filepath.Join(tree, "*.spec"))
	switch len(specs) {
	case 0:
		return "", fmt.Errorf("%w: no *.spec at the top of the tree", ErrNoPackaging)
	case 1:
		return specs[0], nil
	}
	return "", fmt.Errorf("%w: %d *.spec files at the top of the tree; name one with with: {spec: FILE}", ErrNoPackaging, len(specs))
}

// copyTree copies src to dst (files, directories, symlinks as links),
// leaving out the top-level entries named in skip.
func copyTree(src, dst string, skip ...string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		if isSkipped(rel, skip) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.MkdirAll(target, info.Mode().Perm()|0o700)
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		case info.Mode().IsRegular():
			return copyFile(p, target, info.Mode().Perm())
		}
		return nil // sockets, fifos: nothing a package is built from
	})
}

func isSkipped(rel string, skip []string) bool {
	top, _, _ := strings.Cut(rel, string(filepath.Separator))
	for _, s := range skip {
		if top == s {
			return true
		}
	}
	return false
}

func copyFile(src, dst string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("copy: %w", err)
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("copy: %w", err)
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return fmt.Errorf("copy: %w", err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s: %w", src, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return nil
}

// writeTarGz packs tree (without the top-level entries in skip) into a
// gzipped tarball whose entries sit under top/, in lexical order, owned by
// root and stamped with mtime, so the same tree always packs the same bytes.
func writeTarGz(dst, tree, top string, mtime time.Time, skip ...string) error {
	return packTarGz(dst, mtime, func(add tarAdd) error {
		return filepath.WalkDir(tree, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, err := filepath.Rel(tree, p)
			if err != nil {
				return err
			}
			if rel != "." && isSkipped(rel, skip) {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			var link string
			if d.Type()&fs.ModeSymlink != 0 {
				if link, err = os.Readlink(p); err != nil {
					return err
				}
			}
			if !d.IsDir() && !info.Mode().IsRegular() && link == "" {
				return nil
			}
			h, err := tar.FileInfoHeader(info, link)
			if err != nil {
				return err
			}
			h.Name = filepath.ToSlash(filepath.Join(top, rel))
			if d.IsDir() {
				h.Name += "/"
			}
			if !info.Mode().IsRegular() {
				return add(h, nil)
			}
			in, err := os.Open(p)
			if err != nil {
				return err
			}
			defer in.Close()
			return add(h, in)
		})
	})
}

// tarAdd writes one entry of a tarball: its header, made reproducible,
// and for a regular file its body.
type tarAdd func(h *tar.Header, body io.Reader) error

// packTarGz writes the gzipped tarball fill adds entries to. Every entry
// is owned by root and stamped with mtime, and gzip records no time or
// name, so the same entries always pack the same bytes.
func packTarGz(dst string, mtime time.Time, fill func(add tarAdd) error) (err error) {
	f, err := os.Create(dst)
	if err != nil {
		return fmt.Errorf("tarball: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("tarball: %w", cerr)
		}
	}()
	gz := gzip.NewWriter(f)
	tw := tar.NewWriter(gz)
	err = fill(func(h *tar.Header, body io.Reader) error {
		h.ModTime, h.AccessTime, h.ChangeTime = mtime, time.Time{}, time.Time{}
		h.Uid, h.Gid, h.Uname, h.Gname = 0, 0, "root", "root"
		h.Format = tar.FormatPAX
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if body == nil {
			return nil
		}
		_, err := io.Copy(tw, body)
		return err
	})
	if err != nil {
		return fmt.Errorf("tarball %s: %w", filepath.Base(dst), err)
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("tarball: %w", err)
	}
	if err := gz.Close(); err != nil {
		return fmt.Errorf("tarball: %w", err)
	}
	return nil
}
