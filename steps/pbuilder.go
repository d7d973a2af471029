package steps

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

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

// defaultMaxAge is how old a base tarball may get before a build updates it.
const defaultMaxAge = 7 * 24 * time.Hour

var defaultMirrors = map[string]string{
	"debian": "http://deb.debian.org/debian",
	"ubuntu": "http://archive.ubuntu.com/ubuntu",
}

func (Pbuilder) Run(ctx context.Context, env *Env, spec protocol.Step) (Outcome, error) {
	outDir, err := stepDir(env, spec.With, "dir", "dist")
	if err != nil {
		return fail(fmt.Errorf("pbuilder: %w", err))
	}
	dscRel := spec.With["dsc"]
	if dscRel == "" {
		dscRel, _ = env.Props.Get("dsc")
	}
	if dscRel == "" {
		return fail(fmt.Errorf("pbuilder: %w: no dsc given and no dsc property (run the source step first)", ErrMissingSource))
	}
	dsc, err := env.Path(dscRel)
	if err != nil {
		return fail(fmt.Errorf("pbuilder dsc: %w", err))
	}
	rb, err := planDebRebuild(env, dsc)
	if err != nil {
		return fail(fmt.Errorf("pbuilder: %w", err))
	}
	if rb.nothing != "" {
		return Outcome{Summary: rb.nothing}, nil
	}
	b, err := baseFor(env, spec.With)
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

// pbuilderBase is one base tarball: CACHE/pbuilder/DISTRO-CODENAME-ARCH/base.tgz.
type pbuilderBase struct {
	dir                         string
	distro, codename, arch      string
	mirror, components, keyring string
	maxAge                      time.Duration
}

func (b pbuilderBase) String() string { return b.distro + "/" + b.codename + "/" + b.arch }
func (b pbuilderBase) path() string   { return filepath.Join(b.dir, "base.tgz") }

var reBaseName = regexp.MustCompile(`^[a-z0-9][a-z0-9.+_-]*$`)

func baseFor(env *Env, with map[string]string) (pbuilderBase, error) {
	b := pbuilderBase{maxAge: defaultMaxAge, components: withDefault(with["components"], "main"), keyring: with["keyring"]}
	b.distro, _ = env.Props.Get("distro")
	b.codename, _ = env.Props.Get("distro_version")
	b.arch, _ = env.Props.Get("arch")
	for _, s := range []string{b.distro, b.codename, b.arch} {
		if !reBaseName.MatchString(s) {
			return b, fmt.Errorf("target %q is not distro/codename/arch", env.Job.Target)
		}
	}
	b.mirror = withDefault(with["mirror"], defaultMirrors[b.distro])
	if b.mirror == "" {
		return b, fmt.Errorf("no default mirror for %s: set with: {mirror: URL}", b.distro)
	}
	if s := with["max_age"]; s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return b, fmt.Errorf("max_age %q: want a positive duration such as 24h", s)
		}
		b.maxAge = d
	}
	b.dir = filepath.Join(env.CacheDir, "pbuilder", b.distro+"-"+b.codename+"-"+b.arch)
	return b, nil
}

// fresh reports whether the base exists and is younger than maxAge.
func (b pbuilderBase) fresh() bool {
	fi, err := os.Stat(b.path())
	return err == nil && time.Since(fi.ModTime()) < b.maxAge
}

// ensure makes the base fresh: created when missing, updated when older
// than maxAge. Only one process per base does so at a time (a file lock,
// so slots and workers sharing the cache agree); the new base is built
// beside the old one and renamed over it, so builds that already opened
// the old one read it to the end and never see a half-written tarball.
func (b pbuilderBase) ensure(ctx context.Context, env *Env, timeout time.Duration) error {
	if b.fresh() {
		env.Logf("base %s is fresh (max age %s)", b.path(), b.maxAge)
		return nil
	}
	if err := os.MkdirAll(b.dir, 0o755); err != nil {
		return err
	}
	unlock, err := lockFile(ctx, filepath.Join(b.dir, "base.lock"))
	if err != nil {
		return err
	}
	defer unlock()
	if b.fresh() { // another build refreshed it while this one waited
		env.Logf("base %s was refreshed by another build", b.path())
		return nil
	}
	next := b.path() + ".new"
	_ = os.Remove(next)
	start := time.Now()
	var argv []string
	if _, err := os.Stat(b.path()); err == nil {
		if err := copyFile(b.path(), next, 0o644); err != nil {
			return err
		}
		argv = []string{"pbuilder", "update", "--basetgz", next}
	} else {
		argv = []string{"pbuilder", "create", "--basetgz", next, "--distribution", b.codename,
			"--architecture", b.arch, "--mirror", b.mirror, "--components", b.components}
		if b.keyring != "" {
			argv = append(argv, "--debootstrapopts", "--keyring="+b.keyring)
		}
	}
	out, err := runTool(ctx, env, ".", timeout, nil, asRoot(argv...)...)
	if err != nil {
		_ = os.Remove(next)
		// debootstrap's and apt's "E: ..." say why (an unreachable mirror, a
		// missing keyring); the exit status does not.
		if why := out.firstLine("E: "); why != "" {
			return fmt.Errorf("%w: %s", out.failure("pbuilder "+argv[1], err, ErrToolFailed), why)
		}
		return out.failure("pbuilder "+argv[1], err, ErrToolFailed)
	}
	if err := os.Rename(next, b.path()); err != nil {
		return err
	}
	env.Logf("base %s: pbuilder %s took %s", b.path(), argv[1], time.Since(start).Round(time.Second))
	return nil
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
