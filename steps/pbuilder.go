package steps

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/kiln-build/kiln/protocol"
)

// Pbuilder builds a Debian source package (.dsc) in a clean chroot made
// from a base tarball per distribution, codename and architecture that the
// worker keeps under its cache directory.
//
// with: dsc (default ${prop.dsc}, set by the source step), dir (results,
// default "dist": what the .changes lists and the rest of the source
// package, see completeSourcePackages), max_age (rebuild age of the base
// tarball, default 168h), mirror (default Debian's or Ubuntu's main
// archive), components (default "main"), keyring (debootstrap's keyring
// for the base, default its own).
//
// The job's RepoURL, the target's dev channel, is added to the chroot with
// its key (RepoKey) by a D hook, which pbuilder runs before it installs the
// build dependencies: so a package published moments before by a dependency
// in the same buildset is installable, and the key is trusted only for that
// source (signed-by), not for the whole chroot.
type Pbuilder struct{}

func (Pbuilder) Run(ctx context.Context, env *Env, spec protocol.Step) (Outcome, error) {
	outDir, err := stepDir(env, spec.With, "dir", "dist")
	if err != nil {
		return fail(fmt.Errorf("pbuilder: %w", err))
	}
	dsc, err := sourceDSC(env, spec)
	if err != nil {
		return fail(fmt.Errorf("pbuilder: %w", err))
	}
	rb, err := planDebRebuild(env, dsc)
	if err != nil {
		return fail(fmt.Errorf("pbuilder: %w", err))
	}
	if rb.nothing != "" {
		return Outcome{Summary: rb.nothing}, nil
	}
	b, err := baseFor(env, spec.With, pbuilderTool)
	if err != nil {
		return fail(fmt.Errorf("pbuilder: %w", err))
	}
	// Bad input fails before a base is made, which can take minutes.
	hooks, err := writeDevChannelHook(env, b.codename)
	if err != nil {
		return fail(fmt.Errorf("pbuilder: %w", err))
	}
	if err := b.ensure(ctx, env, spec.Timeout); err != nil {
		return fail(fmt.Errorf("pbuilder base %s: %w", b, err))
	}
	argv := []string{"pbuilder", "build", "--basetgz", b.path(), "--buildresult", outDir}
	if hooks != "" {
		argv = append(argv, "--hookdir", hooks)
	}
	if rb.n > 0 {
		// -B: Debian's buildds build a binNMU's architecture-dependent
		// packages only (see archIndependentOnly).
		argv = append(argv, "--bin-nmu", rb.reason, "--bin-nmu-version", strconv.Itoa(rb.n),
			"--bin-nmu-timestamp", "@"+strconv.FormatInt(sourceTime(env.Props).Unix(), 10), "--debbuildopts", "-B")
	}
	out, err := runTool(ctx, env, ".", spec.Timeout, nil, asRoot(append(argv, dsc)...)...)
	if err != nil {
		return fail(out.failure("pbuilder", err, ErrBuildFailed))
	}
	// pbuilder copied only what the .changes lists; the orig tarball of a
	// later revision is not among it, but the source package needs it.
	if err := completeSourcePackages(env, outDir, filepath.Dir(dsc)); err != nil {
		return fail(fmt.Errorf("pbuilder: %w", err))
	}
	debs, err := globFiles(outDir, "*.deb")
	if err != nil {
		return fail(fmt.Errorf("pbuilder: %w", err))
	}
	names := make([]string, len(debs))
	for i, d := range debs {
		names[i] = filepath.Base(d)
	}
	return Outcome{Summary: fmt.Sprintf("%s: %s%s", b, rb.summary(), packageList(names))}, nil
}

// sourceDSC is the .dsc a chroot builder builds: with: dsc, else the one
// the source step made.
func sourceDSC(env *Env, spec protocol.Step) (string, error) {
	dscRel := spec.With["dsc"]
	if dscRel == "" {
		dscRel, _ = env.Props.Get("dsc")
	}
	if dscRel == "" {
		return "", fmt.Errorf("%w: no dsc given and no dsc property (run the source step first)", ErrMissingSource)
	}
	dsc, err := env.Path(dscRel)
	if err != nil {
		return "", fmt.Errorf("dsc: %w", err)
	}
	return dsc, nil
}

// devChannelHook is pbuilder's D hook: run in the chroot after it is set
// up and before the build dependencies are installed.
const devChannelHook = `#!/bin/sh
# Written by kiln: the farm's dev channel, so that packages published by
# this build's dependencies moments ago are installable.
set -e
mkdir -p /etc/apt/keyrings
cat > /etc/apt/keyrings/kiln-dev.asc <<'KILN_KEY_END'
%s
KILN_KEY_END
echo 'deb [signed-by=/etc/apt/keyrings/kiln-dev.asc] %s %s main' > /etc/apt/sources.list.d/kiln-dev.list
apt-get update
`

// writeDevChannelHook writes the hook directory for the job's dev channel
// and returns it; "" when the job has none (a farm without repositories).
func writeDevChannelHook(env *Env, codename string) (string, error) {
	if env.Job.RepoURL == "" {
		env.Logf("no dev channel in the job: building against the distribution only")
		return "", nil
	}
	if err := checkDevChannel(env.Job); err != nil {
		return "", err
	}
	// The key goes into a here-document that ends at this word.
	key := strings.TrimSpace(env.Job.RepoKey)
	if strings.Contains(key, "KILN_KEY_END") {
		return "", errors.New("dev channel key contains KILN_KEY_END")
	}
	dir, err := env.Path(".kiln/pbuilder-hooks")
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	hook := fmt.Sprintf(devChannelHook, key, env.Job.RepoURL, codename)
	if err := os.WriteFile(filepath.Join(dir, "D10kiln-dev-channel"), []byte(hook), 0o755); err != nil {
		return "", err
	}
	env.Logf("dev channel %s added to the chroot (signed-by its key)", env.Job.RepoURL)
	return dir, nil
}
