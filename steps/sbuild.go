package steps

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/kiln-build/kiln/protocol"
)

// Sbuild builds a Debian source package (.dsc) with sbuild, Debian's own
// reference builder, in its unshare mode: the chroot is unpacked from a
// tarball made by mmdebstrap, one per distribution, codename and
// architecture in the worker's cache (the same freshness and locking as
// pbuilder's base: see chrootBase), into a user namespace, so neither the
// build nor the tarball needs root.
//
// A worker running as root runs mmdebstrap and sbuild as with: user
// (default kiln-sbuild), which must exist and have subordinate uid and gid
// ranges (/etc/subuid, /etc/subgid) for unshare to map into the chroot;
// sbuild reads a private copy of the source package (see stageFor). A
// worker running as another user runs them as itself.
//
// with: dsc (default ${prop.dsc}), dir (results, default "dist": the .debs,
// .changes and .buildinfo, and the source package), max_age (default
// 168h), mirror, components, keyring (mmdebstrap's), user.
//
// The job's dev channel is an extra repository with its key
// (--extra-repository, --extra-repository-key), as with pbuilder.
type Sbuild struct{}

// defaultSbuildUser is who builds when the worker is root.
const defaultSbuildUser = "kiln-sbuild"

func (Sbuild) Run(ctx context.Context, env *Env, spec protocol.Step) (Outcome, error) {
	outDir, err := stepDir(env, spec.With, "dir", "dist")
	if err != nil {
		return fail(fmt.Errorf("sbuild: %w", err))
	}
	dsc, err := sourceDSC(env, spec)
	if err != nil {
		return fail(fmt.Errorf("sbuild: %w", err))
	}
	rb, err := planDebRebuild(env, dsc)
	if err != nil {
		return fail(fmt.Errorf("sbuild: %w", err))
	}
	if rb.nothing != "" {
		return Outcome{Summary: rb.nothing}, nil
	}
	b, err := baseFor(env, spec.With, sbuildTool)
	if err != nil {
		return fail(fmt.Errorf("sbuild: %w", err))
	}
	if os.Geteuid() == 0 {
		name := withDefault(spec.With["user"], defaultSbuildUser)
		if b.as, err = lookupAccount(name); err != nil {
			return fail(fmt.Errorf("sbuild: %w: the worker is root, and sbuild runs as a user with subordinate ids (docs/distro-builds.md)", err))
		}
	}
	if env.Job.RepoURL != "" {
		if err := checkDevChannel(env.Job); err != nil {
			return fail(fmt.Errorf("sbuild: %w", err))
		}
	}
	// Bad input fails before a base is made, which takes a minute.
	st, err := stageFor(env, "sbuild", []string{dsc}, b.as)
	if st != nil {
		defer st.remove(env)
	}
	if err != nil {
		return fail(fmt.Errorf("sbuild: %w", err))
	}
	if err := b.ensure(ctx, env, spec.Timeout); err != nil {
		return fail(fmt.Errorf("sbuild base %s: %w", b, err))
	}
	results, err := st.mkdir("results", b.as)
	if err != nil {
		return fail(fmt.Errorf("sbuild: %w", err))
	}
	argv := []string{"sbuild", "--chroot-mode=unshare", "--chroot=" + b.path(), "--dist=" + b.codename, "--arch=" + b.arch,
		"--nolog", "--no-run-lintian", "--no-run-piuparts", "--no-run-autopkgtest", "--build-dir=" + results}
	if env.Job.RepoURL != "" {
		key := filepath.Join(st.dir, "kiln-dev.asc")
		if err := st.write(key, []byte(env.Job.RepoKey), b.as); err != nil {
			return fail(fmt.Errorf("sbuild: %w", err))
		}
		argv = append(argv, fmt.Sprintf("--extra-repository=deb %s %s main", env.Job.RepoURL, b.codename), "--extra-repository-key="+key)
		env.Logf("dev channel %s added to the chroot (its key given to sbuild)", env.Job.RepoURL)
	}
	if rb.n > 0 {
		// --no-arch-all: Debian binNMUs architecture-dependent packages
		// only (see archIndependentOnly).
		argv = append(argv, "--make-binNMU="+rb.reason, "--binNMU="+strconv.Itoa(rb.n), "--maintainer="+rb.maintainer,
			"--binNMU-timestamp="+strconv.FormatInt(sourceTime(env.Props).Unix(), 10), "--no-arch-all")
	}
	argv = append(argv, st.names[0])
	sub := *env
	sub.Workspace = st.dir
	toolEnv := map[string]string{"HOME": st.home}
	if b.as != nil {
		toolEnv["USER"], toolEnv["LOGNAME"] = b.as.name, b.as.name
	}
	out, err := runTool(ctx, &sub, ".", spec.Timeout, toolEnv, b.as.argv(false, argv)...)
	if err != nil {
		return fail(out.failure("sbuild", err, ErrBuildFailed))
	}
	// What the .changes lists: debs, udebs (debian-installer), Ubuntu's
	// ddebs, and the .buildinfo.
	if _, err := moveResults(results, outDir, "*.deb", "*.udeb", "*.ddeb", "*.changes", "*.buildinfo"); err != nil {
		return fail(fmt.Errorf("sbuild: %w", err))
	}
	// sbuild leaves the source package where it was; the dist/ of a
	// Debian build holds it next to the .changes (see pbuilder), and the
	// master publishes it from there. A binNMU has no source of its own.
	if rb.n == 0 {
		if err := copyFile(dsc, filepath.Join(outDir, filepath.Base(dsc)), 0o644); err != nil {
			return fail(fmt.Errorf("sbuild: %w", err))
		}
		if err := completeSourcePackages(env, outDir, filepath.Dir(dsc)); err != nil {
			return fail(fmt.Errorf("sbuild: %w", err))
		}
	}
	debs, err := globFiles(outDir, "*.deb")
	if err != nil {
		return fail(fmt.Errorf("sbuild: %w", err))
	}
	names := make([]string, len(debs))
	for i, d := range debs {
		names[i] = filepath.Base(d)
	}
	return Outcome{Summary: fmt.Sprintf("%s (sbuild): %s%s", b, rb.summary(), packageList(names))}, nil
}
