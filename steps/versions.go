package steps

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/kiln-build/kiln/repo/pkgmeta"
)

// Versions that always upgrade (docs/versions.md). A build whose packages
// would carry a version the builder has published already (the job's
// Published list) is a rebuild: Debian's binNMU (+bN, binary-only) or an
// rpm Release suffix (.bN) puts it above the published one and below the
// packager's next version. A Debian tree committed after its last
// changelog entry is a snapshot: its source version gets +gitN.HASH, or
// ~gitN.HASH while that entry is UNRELEASED (a version still being
// prepared). A component with versions: exact (Job.ExactVersions) gets
// neither.

var (
	reDebRebuild = regexp.MustCompile(`\+b([0-9]+)$`)
	reRPMRebuild = regexp.MustCompile(`\.b([0-9]+)$`)
)

// rebuildNumber returns the N of a rebuild of base, a version as the
// format's tools print it: one more than the highest rebuild of base among
// published, 0 when base was never published. For rpm, base's Release is
// the spec's as the worker's host evaluates it, without the chroot's
// %{dist}, so a published Release that continues it after a dot counts.
func rebuildNumber(rpm bool, base string, published []string) int {
	sep, re := "+b", reDebRebuild
	if rpm {
		sep, re = ".", reRPMRebuild
	}
	n, seen := 0, false
	for _, p := range published {
		if p == base {
			seen = true
			continue
		}
		rest, ok := strings.CutPrefix(p, base)
		if !ok || !strings.HasPrefix(rest, sep) {
			continue
		}
		m := re.FindStringSubmatch(rest)
		if m == nil && !rpm {
			continue // base+"+b…" that is not a rebuild number
		}
		seen = true
		if m != nil {
			k, _ := strconv.Atoi(m[1]) // digits, by the regexp
			n = max(n, k)
		}
	}
	if !seen {
		return 0
	}
	return n + 1
}

// commitsAfter counts the commits on the first-parent line from the tree's
// HEAD back to the one that last changed path (relative to the tree), and
// returns HEAD's hash. A tree outside git, or a path git never had, counts
// 0: there is nothing to be a snapshot of.
func commitsAfter(tree, path string) (int, string, error) {
	repo, err := git.PlainOpenWithOptions(tree, &git.PlainOpenOptions{DetectDotGit: true})
	if errors.Is(err, git.ErrRepositoryNotExists) {
		return 0, "", nil
	}
	if err != nil {
		return 0, "", fmt.Errorf("open git repository at %s: %w", tree, err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		return 0, "", fmt.Errorf("git worktree: %w", err)
	}
	rel, err := filepath.Rel(wt.Filesystem.Root(), filepath.Join(tree, path))
	if err != nil {
		return 0, "", err
	}
	rel = filepath.ToSlash(rel)
	head, err := repo.Head()
	if err != nil {
		return 0, "", fmt.Errorf("git HEAD: %w", err)
	}
	c, err := repo.CommitObject(head.Hash())
	if err != nil {
		return 0, "", fmt.Errorf("git HEAD commit: %w", err)
	}
	// Far more history than any changelog goes without an entry; past it the
	// count would be only slower, not more useful.
	const limit = 100000
	fileHash := func(c *object.Commit) string {
		f, err := c.File(rel)
		if err != nil {
			return ""
		}
		return f.Hash.String()
	}
	n, cur := 0, fileHash(c)
	for n < limit && cur != "" {
		if c.NumParents() == 0 {
			break
		}
		parent, err := c.Parent(0)
		if err != nil {
			return 0, "", fmt.Errorf("git parent of %s: %w", c.Hash, err)
		}
		prev := fileHash(parent)
		if prev != cur {
			break
		}
		c, n = parent, n+1
	}
	return n, head.Hash().String(), nil
}

// snapshotVersion is the source version of a tree n commits after the
// changelog entry of version (HEAD at hash); "" when it is that entry
// itself, released.
func snapshotVersion(version, distribution string, n int, hash string) string {
	short := hash
	if len(short) > 7 {
		short = short[:7]
	}
	if strings.EqualFold(distribution, "UNRELEASED") {
		return fmt.Sprintf("%s~git%d.%s", version, n, short)
	}
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("%s+git%d.%s", version, n, short)
}

// changelogEntry is one stanza of debian/changelog.
type changelogEntry struct {
	Source, Version, Distribution string
	BinaryOnly                    bool
	Changes                       []string
	Maintainer                    string
	Date                          time.Time
}

// prependChangelog writes e on top of the changelog at path, in the format
// dpkg-parsechangelog reads (Debian Policy 4.4).
func prependChangelog(path string, e changelogEntry) error {
	old, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("changelog: %w", err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%s) %s; urgency=medium", e.Source, e.Version, e.Distribution)
	if e.BinaryOnly {
		b.WriteString(", binary-only=yes")
	}
	b.WriteString("\n\n")
	for _, c := range e.Changes {
		fmt.Fprintf(&b, "  * %s\n", c)
	}
	fmt.Fprintf(&b, "\n -- %s  %s\n\n", e.Maintainer, e.Date.UTC().Format("Mon, 02 Jan 2006 15:04:05 -0700"))
	b.Write(old)
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("changelog: %w", err)
	}
	return nil
}

// archIndependentOnly reports whether a source's binary packages are all
// Architecture: all (the .dsc's Architecture field lists them). Debian
// never binNMUs those: their contents do not depend on what they were
// built against, and a +bN on them would break the (= ${source:Version})
// relations of their siblings.
func archIndependentOnly(archs string) bool {
	fields := strings.Fields(archs)
	for _, a := range fields {
		if a != "all" {
			return false
		}
	}
	return len(fields) > 0
}

// noRebuildProp is set by a packaging step that had nothing new to build:
// a no-change rebuild of Architecture: all packages that are published
// already. The upload step then collects nothing instead of failing.
const noRebuildProp = "nothing_to_publish"

// debRebuild is what a Debian build step does about versions.
type debRebuild struct {
	version string // the source version
	n       int    // the binNMU number; 0: an ordinary build
	reason  string // the binNMU's changelog line
	// maintainer signs the binNMU's changelog entry: the source's, as
	// pbuilder defaults to (sbuild needs to be told).
	maintainer string
	// nothing, when set, says why the step builds nothing: see noRebuildProp.
	nothing string
}

// planDebRebuild decides whether the build of a .dsc is a rebuild, and
// records the binary version it will make (properties binary_version and
// rebuild).
func planDebRebuild(env *Env, dsc string) (debRebuild, error) {
	p, err := pkgmeta.ReadDSC(dsc)
	if err != nil {
		return debRebuild{}, err
	}
	rb := debRebuild{version: p.Version, maintainer: p.Field("Maintainer")}
	if !env.Job.ExactVersions {
		rb.n = rebuildNumber(false, rb.version, env.Job.Published)
	}
	return rb.record(env, p.Name, p.Field("Architecture")), nil
}

// record settles a planned rebuild against the source's architectures and
// sets the properties that say what it builds.
func (rb debRebuild) record(env *Env, source, archs string) debRebuild {
	if rb.n > 0 && archIndependentOnly(archs) {
		rb.nothing = fmt.Sprintf("nothing to rebuild: %s %s is published already and builds only Architecture: all packages, which a rebuild does not change", source, rb.version)
		env.Props.Set(noRebuildProp, rb.nothing)
		return rb
	}
	binary := rb.version
	if rb.n > 0 {
		binary = fmt.Sprintf("%s+b%d", rb.version, rb.n)
		rb.reason = fmt.Sprintf("Rebuild of %s by kiln, build %s.", rb.version, env.Job.Build)
		env.Props.Set("rebuild", strconv.Itoa(rb.n))
		env.Logf("rebuild: %s is published already; building %s", rb.version, binary)
	}
	env.Props.Set("binary_version", binary)
	return rb
}

// summary names a rebuild at the front of a step's summary.
func (rb debRebuild) summary() string {
	if rb.n == 0 {
		return ""
	}
	return fmt.Sprintf("rebuild +b%d, ", rb.n)
}

// planStagedRebuild is planDebRebuild for a staged tree that
// dpkg-buildpackage builds in place: a binNMU's changelog entry is written
// into the staged copy, as pbuilder writes it into its chroot's.
func planStagedRebuild(env *Env, src debSource) (debRebuild, error) {
	rb := debRebuild{version: src.Version, maintainer: src.Top.Maintainer}
	if !env.Job.ExactVersions {
		rb.n = rebuildNumber(false, rb.version, env.Job.Published)
	}
	archs, err := binaryArchs(filepath.Join(src.Tree, "debian/control"))
	if err != nil {
		return rb, err
	}
	if rb = rb.record(env, src.Name, archs); rb.n == 0 || rb.nothing != "" {
		return rb, nil
	}
	e := changelogEntry{Source: src.Name, Version: fmt.Sprintf("%s+b%d", src.Version, rb.n), Distribution: src.Top.Distribution, BinaryOnly: true,
		Changes: []string{"Binary-only non-maintainer upload; no source changes.", rb.reason}, Maintainer: rb.maintainer, Date: sourceTime(env.Props)}
	return rb, prependChangelog(filepath.Join(src.Tree, "debian/changelog"), e)
}

// binaryArchs joins the Architecture fields of a debian/control's binary
// package paragraphs.
func binaryArchs(control string) (string, error) {
	b, err := os.ReadFile(control)
	if err != nil {
		return "", fmt.Errorf("read debian/control: %w", err)
	}
	var archs []string
	for _, para := range strings.Split(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n\n") {
		fields := map[string]string{}
		for _, line := range strings.Split(para, "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && line != "" && line[0] != ' ' && line[0] != '\t' && line[0] != '#' {
				fields[strings.ToLower(k)] = strings.TrimSpace(v)
			}
		}
		if _, ok := fields["package"]; ok {
			archs = append(archs, fields["architecture"])
		}
	}
	return strings.Join(archs, " "), nil
}

var reSpecRelease = regexp.MustCompile(`(?mi)^(Release[ \t]*:[ \t]*)(\S.*?)[ \t]*$`)

// rpmRebuild makes a build of a Version-Release the builder has published
// a rebuild: ".bN" appended to the Release line of the staged spec (after
// %{?dist}, as Fedora's minor bumps), which sorts above the published
// release and below the packager's next one. It records binary_version
// (as rpm prints it, with the host's %{dist}) and rebuild.
func rpmRebuild(env *Env, rs *rpmSource, epoch string) error {
	base := rs.Version + "-" + rs.Release
	if epoch != "" && epoch != "0" {
		base = epoch + ":" + base
	}
	n := 0
	if !env.Job.ExactVersions {
		n = rebuildNumber(true, base, env.Job.Published)
	}
	if n > 0 {
		spec, err := os.ReadFile(rs.Spec)
		if err != nil {
			return fmt.Errorf("rebuild: %w", err)
		}
		loc := reSpecRelease.FindSubmatchIndex(spec)
		if loc == nil {
			return fmt.Errorf("%w: %s has no Release line to make rebuild %d in", ErrBadSpec, filepath.Base(rs.Spec), n)
		}
		suffix := fmt.Sprintf(".b%d", n)
		spec = append(spec[:loc[5]], append([]byte(suffix), spec[loc[5]:]...)...)
		if err := os.WriteFile(rs.Spec, spec, 0o644); err != nil {
			return fmt.Errorf("rebuild: %w", err)
		}
		rs.Release += suffix
		env.Props.Set("rebuild", strconv.Itoa(n))
		env.Logf("rebuild: %s is published already; Release %s", base, rs.Release)
		base += suffix
	}
	env.Props.Set("binary_version", base)
	return nil
}
