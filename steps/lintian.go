package steps

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"

	"github.com/kiln-build/kiln/protocol"
)

// Lintian checks the built Debian packages. Findings are recorded (see
// lintOutcome); they fail the build only where with: {fail_on: error} (or
// warning) says so, because a farm usually adopts lintian gradually.
//
// lintian reads a copy of its input in a private directory: each file the
// glob matches, every file a .changes lists and every file of each source
// package (.dsc), so a missing one is named before lintian starts. A worker
// running as root runs lintian as nobody (see account): lintian
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
		if as, err = lookupAccount("nobody"); err != nil {
			return fail(fmt.Errorf("lintian: running as root and %w", err))
		}
	}
	st, err := stageFor(env, "lintian", files, as)
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
	argv := append([]string{"lintian", "--fail-on", "none", "--tag-display-limit", "0"}, st.names...)
	out, err := runTool(ctx, &sub, ".", spec.Timeout, toolEnv, as.argv(true, argv)...)
	if err != nil {
		return fail(out.failure("lintian", err, ErrToolFailed))
	}
	return lintOutcome(env, "lintian", spec.With, scanLint(out, reLintian))
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
