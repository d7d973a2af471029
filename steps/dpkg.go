package steps

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/kiln-build/kiln/protocol"
)

// Dpkg builds binary packages on the host with dpkg-buildpackage -us -uc -b,
// for hosts that build for their own release without a chroot. The build
// dependencies must be installed on the host; dpkg-buildpackage checks them
// with dpkg-checkbuilddeps first, and the unmet ones become the summary.
//
// with: tree (default "."), dir (results, default "dist"). The .deb,
// .changes and .buildinfo files land in dir.
type Dpkg struct{}

func (Dpkg) Run(ctx context.Context, env *Env, spec protocol.Step) (Outcome, error) {
	outDir, err := stepDir(env, spec.With, "dir", "dist")
	if err != nil {
		return fail(fmt.Errorf("dpkg: %w", err))
	}
	const stage = ".kiln/dpkg"
	stageDir, err := env.Path(stage)
	if err != nil {
		return fail(fmt.Errorf("dpkg: %w", err))
	}
	src, err := stageDebian(ctx, env, spec, stageDir)
	if err != nil {
		return fail(fmt.Errorf("dpkg: %w", err))
	}
	rb, err := planStagedRebuild(env, src)
	if err != nil {
		return fail(fmt.Errorf("dpkg: %w", err))
	}
	if rb.nothing != "" {
		return Outcome{Summary: rb.nothing}, nil
	}
	what := "-b"
	if rb.n > 0 {
		what = "-B" // a binNMU, as pbuilder's
	}
	out, err := runTool(ctx, env, env.rel(src.Tree), spec.Timeout, nil, "dpkg-buildpackage", "-us", "-uc", what)
	if err != nil {
		return fail(out.failure("dpkg-buildpackage", err, ErrBuildFailed))
	}
	debs, err := moveResults(stageDir, outDir, "*.deb", "*.udeb", "*.ddeb", "*.changes", "*.buildinfo")
	if err != nil {
		return fail(fmt.Errorf("dpkg: %w", err))
	}
	return Outcome{Summary: fmt.Sprintf("%s %s: %s%s", src.Name, src.Version, rb.summary(), debs)}, nil
}

// moveResults moves the files matching patterns from one directory to
// another and describes the packages among them for the summary. The first
// pattern must match: it is what the build was for.
func moveResults(from, to string, patterns ...string) (string, error) {
	var made []string
	for i, p := range patterns {
		m, err := filepath.Glob(filepath.Join(from, p))
		if err != nil {
			return "", fmt.Errorf("results %s: %w", p, err)
		}
		if i == 0 && len(m) == 0 {
			return "", fmt.Errorf("results %s in %s: %w", p, from, ErrNoArtifacts)
		}
		for _, f := range m {
			dst := filepath.Join(to, filepath.Base(f))
			if err := moveFile(f, dst); err != nil {
				return "", fmt.Errorf("results: %w", err)
			}
			if i == 0 {
				made = append(made, filepath.Base(f))
			}
		}
	}
	return packageList(made), nil
}
