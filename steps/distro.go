package steps

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/kiln-build/kiln/protocol"
)

// Failures the distribution steps name, so callers (and tests) can tell a
// broken package from a broken worker. The step summary carries the detail.
var (
	ErrNoPackaging   = errors.New("no packaging")
	ErrBadChangelog  = errors.New("unparseable debian/changelog")
	ErrBadSpec       = errors.New("unparseable spec")
	ErrBuildDeps     = errors.New("unsatisfiable build dependency")
	ErrCompile       = errors.New("compile error")
	ErrLint          = errors.New("lint errors")
	ErrBuildFailed   = errors.New("package build failed")
	ErrToolFailed    = errors.New("tool failed")
	ErrMissingSource = errors.New("no source package")
)

// toolOutput is what runTool keeps of a command's output: the first lines
// (enough for the one-line queries such as dpkg-parsechangelog) and the
// diagnosis of why a build failed. Build logs can be megabytes, so nothing
// else is kept; the worker streams every line to the build log anyway.
type toolOutput struct {
	mu    sync.Mutex
	next  Log
	lines []string
	diag  diagnosis
}

// keepLines bounds toolOutput.lines: enough for a linter's findings on a
// large package, and a bound however long a build talks.
const keepLines = 20000

func (o *toolOutput) Line(s string) {
	o.next.Line(s)
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.lines) < keepLines {
		o.lines = append(o.lines, s)
	}
	o.diag.observe(s)
}

// runTool runs argv with dir (workspace-relative) as working directory
// through the shell step, so a distribution tool gets the same process-group
// handling, cancellation and timeout as any shell command.
func runTool(ctx context.Context, env *Env, dir string, timeout time.Duration, extraEnv map[string]string, argv ...string) (*toolOutput, error) {
	out := &toolOutput{next: env.Log}
	sub := *env
	sub.Log = out
	env.Logf("$ %s", strings.Join(argv, " "))
	_, err := Shell{}.Run(ctx, &sub, protocol.Step{Type: "shell", Command: argv, Workdir: dir, Timeout: timeout, Env: extraEnv})
	return out, err
}

// kept returns a copy of the kept lines.
func (o *toolOutput) kept() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.lines)
}

// field returns the value of the first "Name: value" line of out.
func (o *toolOutput) field(name string) string {
	for _, l := range o.kept() {
		if v, ok := strings.CutPrefix(l, name+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// firstLine returns the first kept line containing any of subs, trimmed,
// or "" when none does.
func (o *toolOutput) firstLine(subs ...string) string {
	for _, l := range o.kept() {
		for _, s := range subs {
			if strings.Contains(l, s) {
				return strings.TrimSpace(l)
			}
		}
	}
	return ""
}

// failure turns a failed tool run into the step's error: the reason found
// in the output when there is one (a build dependency, a missing orig
// tarball, a dpkg-source error, a compile error), else what the tool's
// exit says, wrapped in fallback.
func (o *toolOutput) failure(tool string, runErr, fallback error) error {
	if errors.Is(runErr, context.Canceled) || errors.Is(runErr, ErrTimeout) {
		return runErr
	}
	if err := o.diag.err(fallback); err != nil {
		return fmt.Errorf("%s: %w", tool, err)
	}
	return fmt.Errorf("%s: %w: %w", tool, fallback, runErr)
}

// diagnosis recognises, line by line, the reasons a package build fails
// that a person should see without opening the log. Only the first
// compile error, dpkg-source error and missing orig tarball count (what
// follows usually follows from them); every unmet build dependency is
// listed.
type diagnosis struct {
	deps       []string
	orig       string // the missing orig tarball's name
	dpkgSource string // the first "dpkg-source: error: ..."
	compile    string
	inRPMDeps  bool
	inAptUnmet bool
}

var (
	// dpkg-checkbuilddeps (also through dpkg-buildpackage):
	// "dpkg-checkbuilddeps: error: Unmet build dependencies: libgreet-dev"
	reDpkgUnmet = regexp.MustCompile(`Unmet build dependencies: (.+)$`)
	// apt through pbuilder-satisfydepends: " pbuilder-satisfydepends-dummy : Depends: libgreet-dev but it is not installable"
	reAptDepends = regexp.MustCompile(`^\s*(?:\S+ :)?\s+Depends: (.+?)\s*$`)
	// rpmbuild: "error: Failed build dependencies:" then "\tlibgreet-devel is needed by greeter-1.0-1.x86_64"
	reRPMNeeded = regexp.MustCompile(`^\s+(.+?) is needed by \S+$`)
	// dnf in a mock chroot: "No matching package to install: 'libgreet-devel'"
	// and "- nothing provides libgreet-devel needed by greeter-1.0-1.src".
	reDNFMissing = regexp.MustCompile(`No matching package to install: '([^']+)'|nothing provides (.+?) needed by `)
	// gcc and clang: "greet.c:7:2: error: ..." (also "fatal error:")
	reCompile = regexp.MustCompile(`^\S+:\d+(?::\d+)?: (?:fatal )?error: `)
	// An orig tarball that is not there: dpkg-source -b's "no upstream
	// tarball found at ../x_1.0.orig.tar.{bz2,gz,lzma,xz}", and any tool
	// that could not open, copy or stat one, e.g. dpkg-source -x (also
	// inside lintian) "cannot copy ./x_1.0.orig.tar.gz to ...: No such
	// file or directory", pbuilder's cp "cannot stat '...orig.tar.gz': No
	// such file or directory".
	reOrigMissing = regexp.MustCompile(`no upstream tarball found|\.orig(?:-[A-Za-z0-9][A-Za-z0-9-]*)?\.tar\b.*: No such file or directory`)
	reOrigName    = regexp.MustCompile(`[^\s/'"]+\.orig(?:-[A-Za-z0-9][A-Za-z0-9-]*)?\.tar[^\s'":]*`)
)

// dpkgSourceError starts dpkg-source's fatal messages, whichever tool ran
// it (dpkg-buildpackage, pbuilder, lintian).
const dpkgSourceError = "dpkg-source: error: "

func (d *diagnosis) observe(line string) {
	switch {
	case strings.Contains(line, "Failed build dependencies:"):
		d.inRPMDeps = true
		return
	case strings.Contains(line, "The following packages have unmet dependencies:"):
		d.inAptUnmet = true
		return
	}
	if d.inRPMDeps {
		if m := reRPMNeeded.FindStringSubmatch(line); m != nil {
			d.addDep(m[1])
			return
		}
		d.inRPMDeps = false
	}
	if d.inAptUnmet {
		if m := reAptDepends.FindStringSubmatch(line); m != nil {
			d.addDep(m[1])
			return
		}
		d.inAptUnmet = false
	}
	if m := reDpkgUnmet.FindStringSubmatch(line); m != nil {
		for dep := range strings.SplitSeq(m[1], ", ") {
			d.addDep(dep)
		}
		return
	}
	if m := reDNFMissing.FindStringSubmatch(line); m != nil {
		d.addDep(m[1] + m[2])
		return
	}
	if d.orig == "" && reOrigMissing.MatchString(line) {
		d.orig = withDefault(reOrigName.FindString(line), "the orig tarball")
		return
	}
	if i := strings.Index(line, dpkgSourceError); i >= 0 && d.dpkgSource == "" {
		d.dpkgSource = strings.TrimSpace(line[i:])
		return
	}
	if d.compile == "" && reCompile.MatchString(line) {
		d.compile = strings.TrimSpace(line)
	}
}

func (d *diagnosis) addDep(dep string) {
	dep = strings.TrimSpace(dep)
	for _, have := range d.deps {
		if have == dep {
			return
		}
	}
	d.deps = append(d.deps, dep)
}

// err is the diagnosed reason, nil when none was recognised. A dependency
// problem wins: a compile error after missing headers is its consequence.
// A source package that cannot be unpacked or built comes next: nothing
// was compiled then. A dpkg-source error has no sentinel of its own; it
// says why the tool failed, so it is wrapped in the tool's fallback.
func (d *diagnosis) err(fallback error) error {
	switch {
	case len(d.deps) > 0:
		return fmt.Errorf("%w: %s", ErrBuildDeps, strings.Join(d.deps, "; "))
	case d.orig != "":
		return fmt.Errorf("%w %s: %s", ErrMissingOrig, d.orig, origHint)
	case d.dpkgSource != "":
		return fmt.Errorf("%w: %s", fallback, d.dpkgSource)
	case d.compile != "":
		return fmt.Errorf("%w: %s", ErrCompile, d.compile)
	}
	return nil
}

// reRepoURL accepts the URLs a sources line or a .repo file can hold
// without quoting.
var reRepoURL = regexp.MustCompile(`^(https?|file)://[^\s'"\\\[\]]+$`)

// checkDevChannel refuses a job's dev channel that cannot be written into
// an apt sources line, a hook script or a dnf .repo file as it is.
func checkDevChannel(job protocol.Job) error {
	if !reRepoURL.MatchString(job.RepoURL) {
		return fmt.Errorf("dev channel URL %q cannot go into a sources line or .repo file", job.RepoURL)
	}
	key := strings.TrimSpace(job.RepoKey)
	if !strings.HasPrefix(key, "-----BEGIN PGP PUBLIC KEY BLOCK-----") || !strings.HasSuffix(key, "-----END PGP PUBLIC KEY BLOCK-----") {
		return errors.New("dev channel key is not an armored OpenPGP public key")
	}
	return nil
}

// fail is the Outcome of a failed distribution step: the error's text is
// the summary, so the reason is on the build page, not only in the log.
func fail(err error) (Outcome, error) { return Outcome{Summary: summaryLine(err.Error())}, err }

// maxSummary bounds a step summary: it is one line on the build page and
// in kiln ctl builds. Whatever it cuts is in the log, where every line of
// the tool's output went.
const maxSummary = 300

// summaryLine makes s one line of at most maxSummary characters, cut at a
// character boundary and marked with an ellipsis.
func summaryLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > maxSummary {
		return string(r[:maxSummary-1]) + "…"
	}
	return s
}

// stepDir resolves a with: directory option (default def) in the workspace
// and creates it.
func stepDir(env *Env, with map[string]string, key, def string) (string, error) {
	rel := withDefault(with[key], def)
	abs, err := env.Path(rel)
	if err != nil {
		return "", fmt.Errorf("%s %q: %w", key, rel, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return "", fmt.Errorf("%s: %w", key, err)
	}
	return abs, nil
}

// globFiles returns the files matching pattern in dir, failing when none does.
func globFiles(dir, pattern string) ([]string, error) {
	m, err := filepath.Glob(filepath.Join(dir, pattern))
	if err != nil {
		return nil, fmt.Errorf("glob %s: %w", pattern, err)
	}
	if len(m) == 0 {
		return nil, fmt.Errorf("%s in %s: %w", pattern, dir, ErrNoArtifacts)
	}
	return m, nil
}

// rel returns p relative to the workspace, for properties and summaries.
func (e *Env) rel(p string) string {
	if r, err := filepath.Rel(e.Workspace, p); err == nil {
		return r
	}
	return p
}

// asRoot prefixes argv with "sudo -n -E" when the worker does not run as
// root: pbuilder needs root, and a worker should not. -n makes a missing
// sudoers rule fail at once instead of waiting for a password.
func asRoot(argv ...string) []string {
	if os.Geteuid() == 0 {
		return argv
	}
	return append([]string{"sudo", "-n", "-E"}, argv...)
}

// moveFile renames src to dst, or copies and removes it when they are on
// different filesystems (sbuild's stage is under TMPDIR, often a tmpfs).
func moveFile(src, dst string) error {
	err := os.Rename(src, dst)
	if errors.Is(err, syscall.EXDEV) {
		fi, serr := os.Stat(src)
		if serr != nil {
			return fmt.Errorf("move %s: %w", filepath.Base(src), serr)
		}
		if err = copyFile(src, dst, fi.Mode().Perm()); err == nil {
			err = os.Remove(src)
		}
	}
	if err != nil {
		return fmt.Errorf("move %s: %w", filepath.Base(src), err)
	}
	return nil
}

// packageList is the summary's list of built files.
func packageList(names []string) string {
	return strings.Join(names, ", ")
}

// lintFindings are a linter's errors and warnings.
type lintFindings struct {
	errors, warnings []lintFinding
}

type lintFinding struct{ pkg, tag string }

func (f lintFinding) String() string { return f.pkg + ": " + f.tag }

// lintOutcome records findings as properties (NAME_errors, NAME_warnings:
// counts; NAME_error_tags: the errors as "package: tag", space-separated)
// and in the summary, which names the tags (see lintCounts), and fails the
// step when with: fail_on asks: "error" fails on errors, "warning" on
// either, "none" (the default) only records.
func lintOutcome(env *Env, name string, with map[string]string, f lintFindings) (Outcome, error) {
	env.Props.Set(name+"_errors", fmt.Sprint(len(f.errors)))
	env.Props.Set(name+"_warnings", fmt.Sprint(len(f.warnings)))
	errTags := make([]string, len(f.errors))
	for i, e := range f.errors {
		errTags[i] = e.String()
	}
	env.Props.Set(name+"_error_tags", strings.Join(errTags, " "))
	counts := lintCounts(f)
	failOn := withDefault(with["fail_on"], "none")
	var failed bool
	switch failOn {
	case "none":
	case "error":
		failed = len(f.errors) > 0
	case "warning":
		failed = len(f.errors)+len(f.warnings) > 0
	default:
		return fail(fmt.Errorf("%s: fail_on %q: want none, error or warning", name, failOn))
	}
	if failed {
		return fail(fmt.Errorf("%s: %w: %s", name, ErrLint, counts))
	}
	return Outcome{Summary: summaryLine(name + ": " + counts)}, nil
}

// lintTagsShown bounds the tags a summary names per severity; the log has
// every finding.
const lintTagsShown = 6

// lintCounts is "2 errors (bad-distribution-in-changes-file,
// no-copyright-file ×2), 1 warning (no-manual-page)": the count of each
// severity and its distinct tags, the most frequent first, then by name.
func lintCounts(f lintFindings) string {
	return countTags(f.errors, "error") + ", " + countTags(f.warnings, "warning")
}

func countTags(findings []lintFinding, noun string) string {
	s := fmt.Sprintf("%d %s", len(findings), noun)
	if len(findings) != 1 {
		s += "s"
	}
	if len(findings) == 0 {
		return s
	}
	n := map[string]int{}
	var tags []string
	for _, f := range findings {
		if n[f.tag] == 0 {
			tags = append(tags, f.tag)
		}
		n[f.tag]++
	}
	slices.SortFunc(tags, func(a, b string) int {
		if n[a] != n[b] {
			return n[b] - n[a]
		}
		return strings.Compare(a, b)
	})
	shown := make([]string, 0, lintTagsShown+1)
	for i, t := range tags {
		if i == lintTagsShown {
			shown = append(shown, fmt.Sprintf("%d more", len(tags)-i))
			break
		}
		if n[t] > 1 {
			t += fmt.Sprintf(" ×%d", n[t])
		}
		shown = append(shown, t)
	}
	return s + " (" + strings.Join(shown, ", ") + ")"
}
