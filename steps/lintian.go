package steps

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"

	"github.com/kiln-build/kiln/protocol"
)

// Lintian checks the built Debian packages. Findings are recorded (see
// lintOutcome); they fail the build only where with: {fail_on: error} (or
// warning) says so, because a farm usually adopts lintian gradually.
//
// with: files (glob, default dist/*.changes, else dist/*.deb), fail_on.
type Lintian struct{}

// reLintian matches lintian's "E: libgreet1: tag extra" lines.
var reLintian = regexp.MustCompile(`^(?P<sev>[EW]): (?P<pkg>\S+?)(?: \S+)?: (?P<tag>\S+)`)

func (Lintian) Run(ctx context.Context, env *Env, spec protocol.Step) (Outcome, error) {
	files, err := lintTargets(env, spec.With["files"], "dist/*.changes", "dist/*.deb")
	if err != nil {
		return fail(fmt.Errorf("lintian: %w", err))
	}
	// --fail-on none: the exit status then says only whether lintian ran.
	out, err := runTool(ctx, env, ".", spec.Timeout, nil, append([]string{"lintian", "--fail-on", "none", "--tag-display-limit", "0"}, files...)...)
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

// scanLint collects "package: tag" findings from the lines re matches;
// re names its groups sev (E or W), pkg and tag.
func scanLint(out *toolOutput, re *regexp.Regexp) lintFindings {
	var f lintFindings
	for _, l := range out.kept() {
		m := re.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		finding := m[re.SubexpIndex("pkg")] + ": " + m[re.SubexpIndex("tag")]
		if m[re.SubexpIndex("sev")] == "E" {
			f.errors = append(f.errors, finding)
		} else {
			f.warnings = append(f.warnings, finding)
		}
	}
	return f
}
