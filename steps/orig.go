package steps

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/kiln-build/kiln/protocol"
)

// The orig tarball of a Debian source package is the upstream release the
// archive has already: an orig the farm makes itself has other bytes, and
// an archive that holds NAME_UPSTREAM.orig.tar.gz refuses a different file
// of that name. So the source step takes it from where packagers keep it,
// the first of: the repository's pristine-tar branch, its upstream tag,
// the farm's dev channel (an earlier revision published it), with: orig or
// orig_url; and makes one from the tree only when none applies, saying so
// in the summary.

// ErrOrigChecksum is a downloaded orig tarball whose SHA-256 is not the
// one the configuration names.
var ErrOrigChecksum = errors.New("orig tarball checksum mismatch")

// maxOrigDownload bounds a downloaded orig tarball; maxSignature its
// signature. Both only keep a wrong URL from filling the worker's disk.
const (
	maxOrigDownload = 2 << 30
	maxSignature    = 1 << 20
)

// origSkip is what an orig made from the tree leaves out: the packaging,
// quilt's record of applied patches, and the checkout's own files.
var origSkip = []string{".git", ".kiln", "debian", ".pc"}

// defaultUpstreamTag is gbp's default upstream-tag format.
const defaultUpstreamTag = "upstream/%(version)s"

// origSource places NAME_UPSTREAM.orig.tar.EXT in parent, with its
// upstream signature (.asc) when the source has one, and returns how the
// summary names where it came from.
func origSource(ctx context.Context, env *Env, spec protocol.Step, tree, parent, name, upstream string) (string, error) {
	repo, root, err := treeRepository(env, tree)
	if err != nil {
		return "", fmt.Errorf("orig: %w", err)
	}
	if repo != nil {
		from, err := origFromPristineTar(ctx, env, spec, repo, root, parent, name, upstream)
		if from == "" && err == nil {
			from, err = origFromTag(env, spec, repo, root, tree, parent, name, upstream)
		}
		if err != nil {
			return "", err
		}
		if from != "" {
			for _, k := range []string{"orig", "orig_url"} {
				if v := spec.With[k]; v != "" {
					env.Logf("with: %s %s is not used: the repository has the orig (%s)", k, v, from)
				}
			}
			return from, nil
		}
	}
	from, err := origFromChannel(ctx, env, spec, parent, name, upstream)
	if err != nil || from != "" {
		return from, err
	}
	from, err = origFromWith(ctx, env, spec, parent, name, upstream)
	if err != nil || from != "" {
		return from, err
	}
	return origFromTree(env, tree, parent, name, upstream)
}

// treeRepository opens the git repository the tree is in; nil when there
// is none in the workspace (one around the workspace is the host's, not
// the build's).
func treeRepository(env *Env, tree string) (*git.Repository, string, error) {
	repo, err := git.PlainOpenWithOptions(tree, &git.PlainOpenOptions{DetectDotGit: true})
	if errors.Is(err, git.ErrRepositoryNotExists) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("open git repository at %s: %w", env.rel(tree), err)
	}
	wt, err := repo.Worktree()
	if errors.Is(err, git.ErrIsBareRepository) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("git worktree: %w", err)
	}
	ws, err := filepath.EvalSymlinks(env.Workspace)
	if err != nil {
		return nil, "", fmt.Errorf("resolve workspace: %w", err)
	}
	root := wt.Filesystem.Root()
	if !inside(ws, root) {
		return nil, "", nil
	}
	return repo, root, nil
}

// pristineTarBranch is where pristine-tar checkout looks: the local
// branch, else the clone's remote-tracking one (a checkout has only those).
func pristineTarBranch(repo *git.Repository) (*plumbing.Reference, error) {
	for _, name := range []plumbing.ReferenceName{"refs/heads/pristine-tar", "refs/remotes/origin/pristine-tar"} {
		ref, err := repo.Reference(name, true)
		if err == nil {
			return ref, nil
		}
		if !errors.Is(err, plumbing.ErrReferenceNotFound) {
			return nil, fmt.Errorf("git ref %s: %w", name, err)
		}
	}
	return nil, nil
}

// rePristineTarball is a tarball pristine-tar keeps: TARBALL.delta on the
// branch, with TARBALL.id (the upstream tree) and maybe TARBALL.asc.
var rePristineTarball = regexp.MustCompile(`^(.+)_([^_]+)\.orig(?:-[A-Za-z0-9][A-Za-z0-9-]*)?\.tar(?:\.[A-Za-z0-9]+)?$`)

// origFromPristineTar regenerates the upstream version's tarballs (the
// orig and any orig-COMPONENT) with pristine-tar, and their signatures
// where the branch holds them. A branch without that version fails: the
// packager has not committed it, or the changelog names another version.
func origFromPristineTar(ctx context.Context, env *Env, spec protocol.Step, repo *git.Repository, root, parent, name, upstream string) (string, error) {
	ref, err := pristineTarBranch(repo)
	if err != nil || ref == nil {
		return "", err
	}
	branch := ref.Name().Short()
	commit, err := repo.CommitObject(ref.Hash())
	if err != nil {
		return "", fmt.Errorf("read %s: %w", branch, err)
	}
	files, err := commit.Tree()
	if err != nil {
		return "", fmt.Errorf("read %s: %w", branch, err)
	}
	prefix := name + "_" + upstream + ".orig"
	var mains, components, others []string
	for _, e := range files.Entries {
		tarball, ok := strings.CutSuffix(e.Name, ".delta")
		if !ok {
			continue
		}
		switch rest, ok := strings.CutPrefix(tarball, prefix); {
		case ok && strings.HasPrefix(rest, ".tar") && isOrig(tarball):
			mains = append(mains, tarball)
		case ok && strings.HasPrefix(rest, "-") && isOrig(tarball):
			components = append(components, tarball)
		default:
			others = append(others, tarball)
		}
	}
	if len(mains) == 0 {
		return "", fmt.Errorf("%w %s.tar.*: the %s branch has no tarball of upstream version %s; it has %s",
			ErrMissingOrig, prefix, branch, upstream, pristineTarVersions(name, others))
	}
	if len(mains) > 1 {
		return "", fmt.Errorf("%w %s.tar.*: the %s branch has %s; dpkg-source takes one", ErrMissingOrig, prefix, branch, strings.Join(mains, " and "))
	}
	if _, err := exec.LookPath("pristine-tar"); err != nil {
		return "", fmt.Errorf("%w: the repository has a %s branch and this worker has no pristine-tar to read it (install pristine-tar): %w", ErrToolFailed, branch, err)
	}
	tmp, err := os.MkdirTemp(parent, ".pristine-tar-")
	if err != nil {
		return "", fmt.Errorf("pristine-tar: %w", err)
	}
	defer os.RemoveAll(tmp)
	signed := 0
	for _, tarball := range append(mains, components...) {
		if err := pristineTarTree(repo, files, branch, tarball); err != nil {
			return "", err
		}
		dst := filepath.Join(parent, tarball)
		argv := []string{"pristine-tar", "checkout"}
		if _, err := files.File(tarball + ".asc"); err == nil {
			argv = append(argv, "--signature-file", dst+".asc")
			signed++
		}
		// pristine-tar works in TMPDIR: in the workspace, a step killed
		// mid-way leaves nothing behind on the host.
		out, err := runTool(ctx, env, env.rel(root), spec.Timeout, map[string]string{"TMPDIR": tmp}, append(argv, dst)...)
		if err != nil {
			if errors.Is(err, context.Canceled) || errors.Is(err, ErrTimeout) {
				return "", err
			}
			return "", fmt.Errorf("%w %s: pristine-tar checkout: %s", ErrMissingOrig, tarball, withDefault(out.firstLine("pristine-tar:", "fatal:"), err.Error()))
		}
	}
	from := "orig from pristine-tar"
	if ref.Name().IsRemote() {
		from += " (" + branch + ")"
	}
	if signed > 0 {
		from += ", signed"
	}
	return from, nil
}

// pristineTarTree checks that the upstream tree a tarball's delta applies
// to is in the repository, so a clone that lacks it fails with the reason
// instead of git archive's.
func pristineTarTree(repo *git.Repository, files *object.Tree, branch, tarball string) error {
	f, err := files.File(tarball + ".id")
	if err != nil {
		return fmt.Errorf("%w %s: the %s branch has no %s.id", ErrMissingOrig, tarball, branch, tarball)
	}
	id, err := f.Contents()
	if err != nil {
		return fmt.Errorf("read %s.id: %w", tarball, err)
	}
	id = strings.TrimSpace(id)
	if !plumbing.IsHash(id) {
		return fmt.Errorf("%w %s: %s.id on the %s branch holds %q, not a git object id", ErrMissingOrig, tarball, tarball, branch, id)
	}
	if _, err := repo.Object(plumbing.AnyObject, plumbing.NewHash(id)); err != nil {
		return fmt.Errorf("%w %s: pristine-tar needs upstream tree %s, which the repository lacks (push the upstream branch or tag it was committed from): %w",
			ErrMissingOrig, tarball, id, err)
	}
	return nil
}

// pristineTarVersions names what a pristine-tar branch holds instead: the
// upstream versions of name's tarballs, else the tarballs themselves.
func pristineTarVersions(name string, tarballs []string) string {
	var versions []string
	for _, t := range tarballs {
		if m := rePristineTarball.FindStringSubmatch(t); m != nil && m[1] == name && !slices.Contains(versions, m[2]) {
			versions = append(versions, m[2])
		}
	}
	switch {
	case len(versions) > 0:
		return strings.Join(versions, ", ")
	case len(tarballs) > 0:
		return strings.Join(tarballs, ", ")
	}
	return "no tarballs"
}

// origFromTag packs the upstream tag's tree as gbp does when it has no
// tarball: the whole tree, under NAME-UPSTREAM/, stamped with the tagged
// commit's time. A tree in a subdirectory of the repository takes the
// same subdirectory of the tag. Without with: upstream_tag a missing tag
// is no error: gbp's default format is only a convention.
func origFromTag(env *Env, spec protocol.Step, repo *git.Repository, root, tree, parent, name, upstream string) (string, error) {
	format, explicit := spec.With["upstream_tag"], true
	if format == "" {
		format, explicit = defaultUpstreamTag, false
	}
	dst := filepath.Join(parent, name+"_"+upstream+".orig.tar.gz")
	tag, err := upstreamTag(format, upstream)
	if err != nil {
		return "", fmt.Errorf("%w %s: with: upstream_tag: %w", ErrMissingOrig, filepath.Base(dst), err)
	}
	ref, err := repo.Tag(tag)
	if errors.Is(err, git.ErrTagNotFound) {
		if explicit {
			return "", fmt.Errorf("%w %s: with: {upstream_tag: %s}: the repository has no tag %s", ErrMissingOrig, filepath.Base(dst), format, tag)
		}
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("git tag %s: %w", tag, err)
	}
	commit, err := tagCommit(repo, ref.Hash())
	if err != nil {
		return "", fmt.Errorf("git tag %s: %w", tag, err)
	}
	t, err := commit.Tree()
	if err != nil {
		return "", fmt.Errorf("git tag %s: %w", tag, err)
	}
	if sub, err := filepath.Rel(root, tree); err == nil && sub != "." {
		if t, err = t.Tree(filepath.ToSlash(sub)); err != nil {
			return "", fmt.Errorf("%w %s: tag %s has no %s: %w", ErrMissingOrig, filepath.Base(dst), tag, filepath.ToSlash(sub), err)
		}
	}
	env.Logf("making %s from tag %s (commit %s)", filepath.Base(dst), tag, commit.Hash)
	if err := writeGitTarGz(dst, t, name+"-"+upstream, commit.Committer.When); err != nil {
		return "", err
	}
	return "orig from tag " + tag, nil
}

// tagCommit is the commit a tag names, through an annotated tag's object.
func tagCommit(repo *git.Repository, h plumbing.Hash) (*object.Commit, error) {
	tag, err := repo.TagObject(h)
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		return repo.CommitObject(h)
	}
	if err != nil {
		return nil, err
	}
	return tag.Commit()
}

// upstreamTag expands a gbp upstream-tag format: %(version)s is the
// upstream version as git allows it in a tag name (gbp's mangling: ~
// becomes _, : becomes %), %(hversion)s the same with . as -, and %% is a
// percent sign.
func upstreamTag(format, version string) (string, error) {
	v := strings.NewReplacer("~", "_", ":", "%").Replace(version)
	var b strings.Builder
	for rest := format; rest != ""; {
		i := strings.IndexByte(rest, '%')
		if i < 0 {
			b.WriteString(rest)
			break
		}
		b.WriteString(rest[:i])
		rest = rest[i:]
		switch {
		case strings.HasPrefix(rest, "%%"):
			b.WriteByte('%')
			rest = rest[2:]
		case strings.HasPrefix(rest, "%(version)s"):
			b.WriteString(v)
			rest = rest[len("%(version)s"):]
		case strings.HasPrefix(rest, "%(hversion)s"):
			b.WriteString(strings.ReplaceAll(v, ".", "-"))
			rest = rest[len("%(hversion)s"):]
		default:
			return "", fmt.Errorf("%q: %% must start %%(version)s, %%(hversion)s or %%%%", format)
		}
	}
	if b.Len() == 0 {
		return "", fmt.Errorf("%q names no tag", format)
	}
	return b.String(), nil
}

// origFromWith copies with: orig (a file in the workspace) or downloads
// with: orig_url, checked against orig_sha256. A signature travels along:
// FILE.asc next to the file, or with: orig_asc_url.
func origFromWith(ctx context.Context, env *Env, spec protocol.Step, parent, name, upstream string) (string, error) {
	base := name + "_" + upstream + ".orig.tar."
	given, rawURL := spec.With["orig"], spec.With["orig_url"]
	switch {
	case given != "" && rawURL != "":
		return "", fmt.Errorf("%w %sgz: with: orig and orig_url both given; keep one", ErrMissingOrig, base)
	case given != "":
		p, err := env.Path(given)
		if err != nil {
			return "", fmt.Errorf("orig: %w", err)
		}
		ext, err := tarExt(given)
		if err != nil {
			return "", fmt.Errorf("%w %sgz: with: {orig: %s}: %w", ErrMissingOrig, base, given, err)
		}
		dst := filepath.Join(parent, base+ext)
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%w %s: with: {orig: %s}: %w", ErrMissingOrig, filepath.Base(dst), given, err)
		}
		if err := copyFile(p, dst, 0o644); err != nil {
			return "", fmt.Errorf("orig: %w", err)
		}
		from := "orig from " + given
		if _, err := os.Stat(p + ".asc"); err == nil {
			if err := copyFile(p+".asc", dst+".asc", 0o644); err != nil {
				return "", fmt.Errorf("orig signature: %w", err)
			}
			from += ", signed"
		}
		return from, nil
	case rawURL != "":
		return origDownload(ctx, env, spec, parent, base)
	case spec.With["orig_sha256"] != "" || spec.With["orig_asc_url"] != "":
		return "", fmt.Errorf("%w %sgz: with: orig_sha256 and orig_asc_url need orig_url", ErrMissingOrig, base)
	}
	return "", nil
}

var reSHA256 = regexp.MustCompile(`^[0-9a-f]{64}$`)

// origDownload fetches with: orig_url into parent as base+EXT and keeps it
// only when its SHA-256 is orig_sha256: a URL's content can change, an
// archive's orig cannot.
func origDownload(ctx context.Context, env *Env, spec protocol.Step, parent, base string) (string, error) {
	rawURL, ascURL := spec.With["orig_url"], spec.With["orig_asc_url"]
	want := strings.ToLower(strings.TrimSpace(spec.With["orig_sha256"]))
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("%w %sgz: with: orig_url %q is not an http or https URL", ErrMissingOrig, base, rawURL)
	}
	ext, err := tarExt(path.Base(u.Path))
	if err != nil {
		return "", fmt.Errorf("%w %sgz: with: orig_url: %w", ErrMissingOrig, base, err)
	}
	dst := filepath.Join(parent, base+ext)
	switch {
	case want == "":
		return "", fmt.Errorf("%w %s: with: orig_url needs orig_sha256, the checksum the download must have", ErrMissingOrig, filepath.Base(dst))
	case !reSHA256.MatchString(want):
		return "", fmt.Errorf("%w %s: with: orig_sha256 %q is not a SHA-256 (64 hex digits)", ErrMissingOrig, filepath.Base(dst), want)
	}
	if spec.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, spec.Timeout)
		defer cancel()
	}
	env.Logf("downloading %s", rawURL)
	part := dst + ".part"
	defer os.Remove(part)
	got, err := download(ctx, rawURL, part, maxOrigDownload)
	if err != nil {
		return "", fmt.Errorf("%w %s: %w", ErrMissingOrig, filepath.Base(dst), err)
	}
	if got != want {
		return "", fmt.Errorf("%w: %s has SHA-256 %s, with: orig_sha256 says %s", ErrOrigChecksum, rawURL, got, want)
	}
	if err := os.Rename(part, dst); err != nil {
		return "", fmt.Errorf("orig: %w", err)
	}
	from := "orig from " + rawURL
	if ascURL != "" {
		if _, err := download(ctx, ascURL, dst+".asc", maxSignature); err != nil {
			return "", fmt.Errorf("%w %s.asc: %w", ErrMissingOrig, filepath.Base(dst), err)
		}
		from += ", signed"
	}
	return from, nil
}

// download writes what a GET of rawURL returns to dst, refusing more than
// limit bytes, and returns its SHA-256.
func download(ctx context.Context, rawURL, dst string, limit int64) (string, error) {
	f, err := os.Create(dst)
	if err != nil {
		return "", fmt.Errorf("download: %w", err)
	}
	sum, err := get(ctx, rawURL, f, limit)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("GET %s: %w", rawURL, cerr)
	}
	return sum, err
}

// get writes what a GET of rawURL returns to w, refusing more than limit
// bytes, and returns its SHA-256.
func get(ctx context.Context, rawURL string, w io.Writer, limit int64) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return "", fmt.Errorf("GET %s: %w", rawURL, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("GET %s: %w", rawURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s", rawURL, resp.Status)
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(w, h), io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return "", fmt.Errorf("GET %s: %w", rawURL, err)
	}
	if n > limit {
		return "", fmt.Errorf("GET %s: more than %d bytes", rawURL, limit)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// tarExt is the compression of a tarball by its name, as dpkg-source
// names orig tarballs.
func tarExt(name string) (string, error) {
	for _, s := range []struct{ suffix, ext string }{
		{".tar.gz", "gz"}, {".tgz", "gz"}, {".tar.xz", "xz"}, {".txz", "xz"},
		{".tar.bz2", "bz2"}, {".tbz2", "bz2"}, {".tar.lzma", "lzma"},
	} {
		if strings.HasSuffix(name, s.suffix) {
			return s.ext, nil
		}
	}
	return "", fmt.Errorf("%s is not a .tar.gz, .tar.xz, .tar.bz2 or .tar.lzma, the orig tarballs dpkg-source reads", name)
}

// origFromTree makes the orig from the tree, the last resort: no archive
// has these bytes. A 3.0 (quilt) tree with its patches applied (quilt's or
// dpkg-source's .pc/applied-patches) gives the upstream files as they were
// before the patches, which dpkg-source applies to the orig again.
func origFromTree(env *Env, tree, parent, name, upstream string) (string, error) {
	dst := filepath.Join(parent, name+"_"+upstream+".orig.tar.gz")
	src, err := unpatchedTree(env, tree, parent)
	if err != nil {
		return "", fmt.Errorf("orig: %w", err)
	}
	if src != tree {
		defer os.RemoveAll(src)
	}
	env.Logf("making %s from the tree (without %s)", filepath.Base(dst), strings.Join(origSkip, ", "))
	if err := writeTarGz(dst, src, name+"-"+upstream, sourceTime(env.Props), origSkip...); err != nil {
		return "", err
	}
	return "orig made from the tree (its checksum will differ from the archive's)", nil
}

// unpatchedTree returns tree itself when no patches are applied, else a
// copy in parent with each applied patch's files restored from its .pc
// backups, the last patch first.
func unpatchedTree(env *Env, tree, parent string) (string, error) {
	b, err := os.ReadFile(filepath.Join(tree, ".pc", "applied-patches"))
	if errors.Is(err, fs.ErrNotExist) {
		return tree, nil
	}
	if err != nil {
		return "", fmt.Errorf("read .pc/applied-patches: %w", err)
	}
	patches := strings.Fields(string(b))
	if len(patches) == 0 {
		return tree, nil
	}
	for _, p := range patches {
		if !filepath.IsLocal(p) {
			return "", fmt.Errorf(".pc/applied-patches names %q, which is not a patch under .pc", p)
		}
	}
	copyDir, err := os.MkdirTemp(parent, ".unpatched-")
	if err != nil {
		return "", fmt.Errorf("unpatched copy: %w", err)
	}
	if err := copyTree(tree, copyDir, origSkip...); err != nil {
		os.RemoveAll(copyDir)
		return "", fmt.Errorf("unpatched copy: %w", err)
	}
	for _, p := range slices.Backward(patches) {
		if err := restoreQuiltBackup(filepath.Join(tree, ".pc", p), copyDir); err != nil {
			os.RemoveAll(copyDir)
			return "", fmt.Errorf("unapply %s: %w", p, err)
		}
	}
	env.Logf("the tree has %d patches applied (.pc/applied-patches): the orig holds the files as they were before them", len(patches))
	return copyDir, nil
}

// restoreQuiltBackup puts back into dst the files a patch's .pc backup
// holds. An empty backup is quilt's mark for a file the patch created.
func restoreQuiltBackup(backup, dst string) error {
	return filepath.WalkDir(backup, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(backup, p)
		if err != nil {
			return err
		}
		if d.IsDir() || rel == ".timestamp" {
			return nil
		}
		info, err := d.Info()
		if err != nil || !info.Mode().IsRegular() {
			return err
		}
		target := filepath.Join(dst, rel)
		if info.Size() == 0 {
			if err := os.Remove(target); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			return nil
		}
		return copyFile(p, target, info.Mode().Perm())
	})
}

// writeGitTarGz packs a git tree as writeTarGz packs a directory: entries
// under top/ in the tree's order, owned by root, stamped with mtime, and
// with the modes git records (0755 executables, 0644 other files).
// Submodules are left out, as git archive leaves out their content.
func writeGitTarGz(dst string, t *object.Tree, top string, mtime time.Time) error {
	return packTarGz(dst, mtime, func(add tarAdd) error { return addGitTree(add, t, top) })
}

func addGitTree(add tarAdd, t *object.Tree, dir string) error {
	if err := add(&tar.Header{Typeflag: tar.TypeDir, Name: dir + "/", Mode: 0o755}, nil); err != nil {
		return err
	}
	for _, e := range t.Entries {
		// git refuses such entries; a crafted tree must not put files
		// outside the top directory of whoever unpacks the tarball.
		if e.Name == "" || e.Name == "." || e.Name == ".." || strings.Contains(e.Name, "/") {
			return fmt.Errorf("tree entry %q is not a file name", e.Name)
		}
		name := dir + "/" + e.Name
		switch e.Mode {
		case filemode.Dir:
			sub, err := t.Tree(e.Name)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			if err := addGitTree(add, sub, name); err != nil {
				return err
			}
		case filemode.Regular, filemode.Deprecated, filemode.Executable:
			f, err := t.TreeEntryFile(&e)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			r, err := f.Reader()
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			mode := int64(0o644)
			if e.Mode == filemode.Executable {
				mode = 0o755
			}
			err = add(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: f.Size}, r)
			r.Close()
			if err != nil {
				return err
			}
		case filemode.Symlink:
			f, err := t.TreeEntryFile(&e)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			target, err := f.Contents()
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			if err := add(&tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777}, nil); err != nil {
				return err
			}
		}
	}
	return nil
}
