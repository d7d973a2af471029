package steps

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

var defaultMirrors = map[string]string{
	"debian": "http://deb.debian.org/debian",
	"ubuntu": "http://archive.ubuntu.com/ubuntu",
}

// defaultMaxAge is how old a base tarball may get before a build updates it.
const defaultMaxAge = 7 * 24 * time.Hour

// baseTool is what a base tarball is for: pbuilder's base.tgz, made with
// pbuilder create (debootstrap) and kept fresh with pbuilder update; or
// sbuild's unshare tarball, made with mmdebstrap and made anew when stale
// (sbuild updates its unpacked copy before each build anyway).
type baseTool struct {
	name string // CACHE/NAME/...
	file string // the tarball's name in its directory
	// next is where a new tarball is made: mmdebstrap picks the output
	// format from the name's extension.
	next string
}

var (
	pbuilderTool = baseTool{name: "pbuilder", file: "base.tgz", next: "base.tgz.new"}
	sbuildTool   = baseTool{name: "sbuild", file: "chroot.tar", next: "chroot.new.tar"}
)

// chrootBase is one base tarball: CACHE/TOOL/DISTRO-CODENAME-ARCH/FILE.
type chrootBase struct {
	tool                        baseTool
	dir                         string
	distro, codename, arch      string
	mirror, components, keyring string
	maxAge                      time.Duration
	// as makes and reads the tarball (sbuild's user when the worker is
	// root); nil: the worker's own user.
	as *account
}

func (b chrootBase) String() string { return b.distro + "/" + b.codename + "/" + b.arch }
func (b chrootBase) path() string   { return filepath.Join(b.dir, b.tool.file) }

var reBaseName = regexp.MustCompile(`^[a-z0-9][a-z0-9.+_-]*$`)

func baseFor(env *Env, with map[string]string, tool baseTool) (chrootBase, error) {
	b := chrootBase{tool: tool, maxAge: defaultMaxAge, components: withDefault(with["components"], "main"), keyring: with["keyring"]}
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
	b.dir = filepath.Join(env.CacheDir, tool.name, b.distro+"-"+b.codename+"-"+b.arch)
	return b, nil
}

// fresh reports whether the base exists and is younger than maxAge.
func (b chrootBase) fresh() bool {
	fi, err := os.Stat(b.path())
	return err == nil && time.Since(fi.ModTime()) < b.maxAge
}

// ensure makes the base fresh: created when missing, updated when older
// than maxAge. Only one process per base does so at a time (a file lock,
// so slots and workers sharing the cache agree); the new base is built
// beside the old one and renamed over it, so builds that already opened
// the old one read it to the end and never see a half-written tarball.
func (b chrootBase) ensure(ctx context.Context, env *Env, timeout time.Duration) error {
	if b.fresh() {
		env.Logf("base %s is fresh (max age %s)", b.path(), b.maxAge)
		return nil
	}
	if err := os.MkdirAll(b.dir, 0o755); err != nil {
		return err
	}
	if b.as != nil {
		// mmdebstrap, run as the account, writes the tarball here.
		if err := os.Chown(b.dir, b.as.uid, b.as.gid); err != nil {
			return fmt.Errorf("hand %s to %s: %w", b.dir, b.as.name, err)
		}
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
	next := filepath.Join(b.dir, b.tool.next)
	_ = os.Remove(next)
	start := time.Now()
	what, argv, err := b.makeArgv(next)
	if err != nil {
		return err
	}
	out, err := runTool(ctx, env, ".", timeout, nil, argv...)
	if err != nil {
		_ = os.Remove(next)
		// debootstrap's, mmdebstrap's and apt's "E: ..." say why (an
		// unreachable mirror, a missing keyring); the exit status does not.
		if why := out.firstLine("E: "); why != "" {
			return fmt.Errorf("%w: %s", out.failure(what, err, ErrToolFailed), why)
		}
		return out.failure(what, err, ErrToolFailed)
	}
	if err := os.Rename(next, b.path()); err != nil {
		return err
	}
	env.Logf("base %s: %s took %s", b.path(), what, time.Since(start).Round(time.Second))
	return nil
}

// makeArgv is the command that makes (or, for pbuilder, updates a copy of)
// the base at next, and what to call it in messages.
func (b chrootBase) makeArgv(next string) (string, []string, error) {
	if b.tool == sbuildTool {
		// --variant=buildd: essential plus build-essential, what sbuild
		// expects; unshare mode needs no root, only the subordinate ids.
		argv := []string{"mmdebstrap", "--variant=buildd", "--mode=unshare", "--components=" + strings.ReplaceAll(b.components, " ", ","),
			"--architectures=" + b.arch}
		if b.keyring != "" {
			argv = append(argv, "--keyring="+b.keyring)
		}
		return "mmdebstrap", b.as.argv(false, append(argv, b.codename, next, b.mirror)), nil
	}
	if _, err := os.Stat(b.path()); err == nil {
		if err := copyFile(b.path(), next, 0o644); err != nil {
			return "", nil, err
		}
		return "pbuilder update", asRoot("pbuilder", "update", "--basetgz", next), nil
	}
	argv := []string{"pbuilder", "create", "--basetgz", next, "--distribution", b.codename,
		"--architecture", b.arch, "--mirror", b.mirror, "--components", b.components}
	if b.keyring != "" {
		argv = append(argv, "--debootstrapopts", "--keyring="+b.keyring)
	}
	return "pbuilder create", asRoot(argv...), nil
}
