package steps

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/kiln-build/kiln/protocol"
)

// Lintian checks the built Debian packages. Findings are recorded (see
// lintOutcome); they fail the build only where with: {fail_on: error} (or
// warning) says so, because a farm usually adopts lintian gradually.
//
// lintian reads a copy of its input in a private directory: each file the
// glob matches, every file a .changes lists and every file of each source
// package (.dsc), so a missing one is named before lintian starts. A worker
// running as root runs lintian as nobody (see unprivileged): lintian
// unpacks and inspects what the build made, which the build's author
// controls, and says itself that it should not run as root.
//
// with: files (glob, default dist/*.changes, else dist/*.deb), fail_on.
type Lintian struct{}

// reLintian matches lintian's tag lines, "E: libgreet1: tag [context]",
// "W: hello source: tag ..." or "E: hello changes: tag ...": severity,
// package, an optional package type, the tag.
var reLintian = regexp.MustCompile(`^(?P<sev>[EW]): (?P<pkg>\S+?)(?: \S+)?: (?P<tag>\S+)`)

func (Lintian) Run(ctx context.Context, env *Env, spec protocol.Step) (Outcome, error) {
	files, err := lintTargets(env, spec.With["files"], "dist/*.changes", "dist/*.deb")
	if err != nil {
		return fail(fmt.Errorf("lintian: %w", err))
	}
	if _, err := exec.LookPath("lintian"); err != nil {
		return fail(fmt.Errorf("lintian: %w: cannot start lintian: %w", ErrToolFailed, err))
	}
	var as *account
	if os.Geteuid() == 0 {
		if as, err = unprivileged(); err != nil {
			return fail(fmt.Errorf("lintian: %w", err))
		}
	}
	st, err := stageLintian(env, files, as)
	if st != nil {
		defer st.remove(env)
	}
	if err != nil {
		return fail(fmt.Errorf("lintian: %w", err))
	}
	who := "as the worker's user"
	if as != nil {
		who = fmt.Sprintf("as uid %d (nobody), not as root", as.uid)
	}
	env.Logf("lintian: %d file(s) copied to %s; running %s", len(st.staged), st.dir, who)
	// The stage is lintian's working directory, so the log shows the
	// files by name; TMPDIR keeps lintian's unpacked copies in the stage,
	// removed with it even when lintian is killed.
	sub := *env
	sub.Workspace = st.dir
	toolEnv := map[string]string{"TMPDIR": st.tmp}
	if as != nil {
		toolEnv["HOME"] = st.home
	}
	// --fail-on none: the exit status then says only whether lintian ran.
	out, err := runTool(ctx, &sub, ".", spec.Timeout, toolEnv, lintianArgv(as, st.names)...)
	if err != nil {
		return fail(out.failure("lintian", err, ErrToolFailed))
	}
	return lintOutcome(env, "lintian", spec.With, scanLint(out, reLintian))
}

// account is the user lintian runs as when the worker is root.
type account struct{ uid, gid int }

// unprivileged returns nobody and its primary group (nogroup on Debian).
func unprivileged() (*account, error) {
	u, err := user.Lookup("nobody")
	if err != nil {
		return nil, fmt.Errorf("running as root and no user nobody to run lintian as: %w", err)
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return nil, fmt.Errorf("user nobody: uid %q: %w", u.Uid, err)
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return nil, fmt.Errorf("user nobody: gid %q: %w", u.Gid, err)
	}
	return &account{uid, gid}, nil
}

// lintianArgv is lintian's command line, through setpriv when as is set.
// setpriv (util-linux, Essential on Debian, so on every Debian worker)
// only changes the ids and execs: unlike runuser or su it opens no PAM
// session. --clear-groups drops root's supplementary groups, --inh-caps
// and --no-new-privs keep lintian and whatever it runs from gaining any
// privilege back.
func lintianArgv(as *account, files []string) []string {
	argv := append([]string{"lintian", "--fail-on", "none", "--tag-display-limit", "0"}, files...)
	if as == nil {
		return argv
	}
	return append([]string{"setpriv",
		"--reuid=" + strconv.Itoa(as.uid), "--regid=" + strconv.Itoa(as.gid),
		"--clear-groups", "--inh-caps=-all", "--no-new-privs", "--"}, argv...)
}

// lintianStage is the private directory lintian reads from.
type lintianStage struct {
	dir       string
	home, tmp string   // under dir, writable by lintian's user
	names     []string // the files to check, relative to dir
	staged    map[string]string
}

// stageLintian copies the files to check into a new directory, with every
// file each .changes lists and every file of each .dsc (listed or given),
// all taken from beside the file that names them, as lintian and
// dpkg-source look for them. A missing one fails here, named, rather than
// deep inside lintian. With as set, the directory and its files then
// belong to that user: it is created under TMPDIR (not the workspace,
// whose parents nobody may not enter), filled while only root can write to
// it, and handed over last.
func stageLintian(env *Env, files []string, as *account) (*lintianStage, error) {
	dir, err := os.MkdirTemp("", "kiln-lintian-")
	if err != nil {
		return nil, fmt.Errorf("stage: %w", err)
	}
	st := &lintianStage{dir: dir, home: filepath.Join(dir, ".home"), tmp: filepath.Join(dir, ".tmp"), staged: map[string]string{}}
	for _, f := range files {
		name, err := st.add(env, f)
		if err != nil {
			return st, err
		}
		st.names = append(st.names, name)
		if err := st.addListed(env, f); err != nil {
			return st, err
		}
	}
	for _, d := range []string{st.home, st.tmp} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return st, fmt.Errorf("stage: %w", err)
		}
	}
	if as == nil {
		return st, nil
	}
	if err := searchableByOthers(filepath.Dir(dir)); err != nil {
		return st, err
	}
	// Children first: once the directory is nobody's, nobody could swap
	// names in it, but by then there is nothing left to do in it.
	err = filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		return os.Lchown(p, as.uid, as.gid)
	})
	if err == nil {
		err = os.Chown(dir, as.uid, as.gid)
	}
	if err != nil {
		return st, fmt.Errorf("stage: hand over to uid %d: %w", as.uid, err)
	}
	return st, nil
}

// addListed stages what f names: the files of a .changes, then those of
// each .dsc among them (or of f, if it is a .dsc).
func (st *lintianStage) addListed(env *Env, f string) error {
	var dscs []string
	switch {
	case strings.HasSuffix(f, ".dsc"):
		dscs = append(dscs, f)
	case strings.HasSuffix(f, ".changes"):
		listed, err := listedFiles(f)
		if err != nil {
			return err
		}
		for _, lf := range listed {
			p := filepath.Join(filepath.Dir(f), lf.Name)
			if err := st.need(env, p, f, ErrNoArtifacts); err != nil {
				return err
			}
			if strings.HasSuffix(lf.Name, ".dsc") {
				dscs = append(dscs, p)
			}
		}
	}
	for _, dsc := range dscs {
		listed, err := listedFiles(dsc)
		if err != nil {
			return err
		}
		for _, lf := range listed {
			if err := st.need(env, filepath.Join(filepath.Dir(dsc), lf.Name), dsc, ErrMissingSource); err != nil {
				return err
			}
		}
	}
	return nil
}

// need stages p, which by names lists; a missing p is an error wrapping
// kind, or ErrMissingOrig for an upstream tarball.
func (st *lintianStage) need(env *Env, p, by string, kind error) error {
	if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
		name := filepath.Base(p)
		if isOrig(name) { // the tarball or its .asc
			return fmt.Errorf("%w %s: not next to %s (%s)", ErrMissingOrig, name, env.rel(by), origHint)
		}
		return fmt.Errorf("%w: %s lists %s, which is not next to it", kind, env.rel(by), name)
	}
	_, err := st.add(env, p)
	return err
}

// add copies the workspace file p into the stage under its base name,
// once; a link leading out of the workspace is refused (the copy is made
// as root, for another user to read).
func (st *lintianStage) add(env *Env, p string) (string, error) {
	name := filepath.Base(p)
	if prev, ok := st.staged[name]; ok {
		if prev != p {
			return "", fmt.Errorf("stage: two files named %s: %s and %s", name, env.rel(prev), env.rel(p))
		}
		return name, nil
	}
	real, err := env.Path(env.rel(p))
	if err != nil {
		return "", fmt.Errorf("stage: %w", err)
	}
	fi, err := os.Stat(real)
	if err != nil {
		return "", fmt.Errorf("stage: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("stage: %s is not a regular file", env.rel(p))
	}
	if err := copyFile(real, filepath.Join(st.dir, name), 0o644); err != nil {
		return "", fmt.Errorf("stage: %w", err)
	}
	st.staged[name] = p
	return name, nil
}

func (st *lintianStage) remove(env *Env) {
	if err := os.RemoveAll(st.dir); err != nil {
		env.Logf("lintian: removing %s: %v", st.dir, err)
	}
}

// searchableByOthers checks that a user without privileges can reach dir:
// every directory from / down to it must be searchable by others.
func searchableByOthers(dir string) error {
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("stage: %w", err)
		}
		if fi.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("stage: %s is not searchable by others, so lintian cannot run as nobody under it; point TMPDIR elsewhere", d)
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}

// lintTargets returns the files matching glob, else the first of the
// defaults that matches anything.
func lintTargets(env *Env, glob string, defaults ...string) ([]string, error) {
	patterns := defaults
	if glob != "" {
		patterns = []string{glob}
	}
	for _, p := range patterns {
		if _, err := env.Path(p); err != nil {
			return nil, err
		}
		m, err := filepath.Glob(filepath.Join(env.Workspace, p))
		if err != nil {
			return nil, fmt.Errorf("files %q: %w", p, err)
		}
		if len(m) > 0 {
			return m, nil
		}
	}
	return nil, fmt.Errorf("%v: %w", patterns, ErrNoArtifacts)
}

// scanLint collects the findings from the lines re matches; re names its
// groups sev (E or W), pkg and tag.
func scanLint(out *toolOutput, re *regexp.Regexp) lintFindings {
	var f lintFindings
	for _, l := range out.kept() {
		m := re.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		finding := lintFinding{pkg: m[re.SubexpIndex("pkg")], tag: m[re.SubexpIndex("tag")]}
		if m[re.SubexpIndex("sev")] == "E" {
			f.errors = append(f.errors, finding)
		} else {
			f.warnings = append(f.warnings, finding)
		}
	}
	return f
}
