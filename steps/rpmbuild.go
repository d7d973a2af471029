package steps

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/kiln-build/kiln/protocol"
)

// RPMBuild builds binary rpms and the source rpm on the host with rpmbuild
// -ba, for hosts without mock (Debian's rpm package among them). The Source0 tarball is
// made from the tree as the source step makes it; _topdir is in the
// workspace.
//
// Build dependencies that the dev channel holds are installed into a
// per-build root (.kiln/devroot) rather than into the host: dnf resolves
// them and their dependencies inside the channel and downloads them, rpm
// -i --nodeps unpacks them with their own rpm database there, rpmbuild
// checks BuildRequires against that database (--dbpath), and the compiler
// finds their headers and libraries through C_INCLUDE_PATH and
// LIBRARY_PATH. The host stays as it was, and concurrent builds cannot see
// each other's dependencies. Everything else a spec BuildRequires (gcc,
// make) cannot be in that database, so such specs need with: {nodeps:
// "true"} on hosts whose own packages are not rpms.
//
// with: spec (default the only *.spec at the top of the tree), tree
// (default "."), dir (results, default "dist"), nodeps ("true" skips
// rpmbuild's BuildRequires check).
type RPMBuild struct{}

func (RPMBuild) Run(ctx context.Context, env *Env, spec protocol.Step) (Outcome, error) {
	outDir, err := stepDir(env, spec.With, "dir", "dist")
	if err != nil {
		return fail(fmt.Errorf("rpmbuild: %w", err))
	}
	rs, err := prepareRPM(ctx, env, spec)
	if err != nil {
		return fail(fmt.Errorf("rpmbuild: %w", err))
	}
	root, err := devRoot(ctx, env, spec, rs)
	if err != nil {
		return fail(fmt.Errorf("rpmbuild: %w", err))
	}
	// -ba: the source rpm too, which the yum repository publishes for
	// dnf download --source.
	args := []string{"--dbpath", filepath.Join(root, "var/lib/rpm"), "-ba"}
	if spec.With["nodeps"] == "true" {
		args = append(args, "--nodeps")
	}
	buildEnv := map[string]string{
		"C_INCLUDE_PATH":     filepath.Join(root, "usr/include"),
		"CPLUS_INCLUDE_PATH": filepath.Join(root, "usr/include"),
		"LIBRARY_PATH":       filepath.Join(root, "usr/lib64") + ":" + filepath.Join(root, "usr/lib"),
	}
	out, err := runTool(ctx, env, ".", spec.Timeout, buildEnv, rs.rpmbuild(append(args, rs.Spec)...)...)
	if err != nil {
		return fail(out.failure("rpmbuild", err, ErrBuildFailed))
	}
	made, err := moveResults(filepath.Join(rs.Topdir, "RPMS"), outDir, "*/*.rpm")
	if err != nil {
		return fail(fmt.Errorf("rpmbuild: %w", err))
	}
	if _, err := moveResults(filepath.Join(rs.Topdir, "SRPMS"), outDir, "*.src.rpm"); err != nil {
		return fail(fmt.Errorf("rpmbuild: %w", err))
	}
	return Outcome{Summary: fmt.Sprintf("%s %s-%s: %s", rs.Name, rs.Version, rs.Release, made)}, nil
}

// devRoot creates the per-build root with an rpm database and installs
// into it the spec's BuildRequires that the job's dev channel provides,
// with their dependencies from the channel. It returns the root's path.
func devRoot(ctx context.Context, env *Env, spec protocol.Step, rs rpmSource) (string, error) {
	const rootRel = ".kiln/devroot"
	root, err := env.Path(rootRel)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", err
	}
	rpmRoot := []string{"rpm", "--root", root, "--dbpath", "/var/lib/rpm"}
	if out, err := runTool(ctx, env, ".", spec.Timeout, nil, append(rpmRoot, "--initdb")...); err != nil {
		return "", out.failure("rpm --initdb", err, ErrToolFailed)
	}
	if env.Job.RepoURL == "" {
		return root, nil
	}
	out, err := runTool(ctx, env, ".", spec.Timeout, nil, "rpmspec", "-q", "--buildrequires", rs.Spec)
	if err != nil {
		return "", fmt.Errorf("%w: %s", ErrBadSpec, withDefault(out.firstLine("error:"), err.Error()))
	}
	var wanted []string
	for _, l := range out.kept() {
		if name, _, _ := strings.Cut(strings.TrimSpace(l), " "); name != "" && !strings.HasPrefix(name, "$") {
			wanted = append(wanted, name)
		}
	}
	if len(wanted) == 0 {
		return root, nil
	}
	dnf, err := devChannelDNF(env)
	if err != nil {
		return "", err
	}
	// The channel's packages among the BuildRequires, then whatever of the
	// channel those require, until nothing new turns up.
	out, err = runTool(ctx, env, ".", spec.Timeout, nil, append(dnf, append([]string{"repoquery", "--qf", "%{name}", "--whatprovides"}, wanted...)...)...)
	if err != nil {
		return "", out.failure("dnf repoquery", err, ErrBuildDeps)
	}
	set := repoqueryNames(out)
	for frontier := set; len(frontier) > 0; {
		out, err = runTool(ctx, env, ".", spec.Timeout, nil, append(dnf, append([]string{"repoquery", "--qf", "%{name}", "--requires", "--resolve"}, frontier...)...)...)
		if err != nil {
			return "", out.failure("dnf repoquery", err, ErrBuildDeps)
		}
		frontier = nil
		for _, n := range repoqueryNames(out) {
			if !slices.Contains(set, n) {
				set = append(set, n)
				frontier = append(frontier, n)
			}
		}
	}
	if len(set) == 0 {
		env.Logf("the dev channel provides none of %s", strings.Join(wanted, ", "))
		return root, nil
	}
	dl := filepath.Join(root, ".download")
	out, err = runTool(ctx, env, ".", spec.Timeout, nil, append(dnf, append([]string{"download", "--destdir", dl}, set...)...)...)
	if err != nil {
		return "", out.failure("dnf download", err, ErrBuildDeps)
	}
	rpms, err := globFiles(dl, "*.rpm")
	if err != nil {
		return "", err
	}
	// --nodeps: the root holds only the channel's packages; glibc and the
	// like are the host's.
	if out, err := runTool(ctx, env, ".", spec.Timeout, nil, append(append(rpmRoot, "-i", "--nodeps", "--noscripts", "--nosignature"), rpms...)...); err != nil {
		return "", out.failure("rpm -i", err, ErrBuildDeps)
	}
	env.Logf("installed from the dev channel into %s: %s", rootRel, strings.Join(set, ", "))
	return root, nil
}

// repoqueryNames returns the package names dnf repoquery printed, one a
// line; dnf's own messages contain spaces or colons.
func repoqueryNames(out *toolOutput) []string {
	var names []string
	for _, l := range out.kept() {
		if l != "" && !strings.ContainsAny(l, " :") && !slices.Contains(names, l) {
			names = append(names, l)
		}
	}
	return names
}

// devChannelDNF writes a dnf configuration that knows only the job's dev
// channel (repo_gpgcheck on, with RepoKey) and returns the dnf argv prefix
// that uses it, with its cache in the workspace.
func devChannelDNF(env *Env) ([]string, error) {
	dir, key, err := writeRepoKey(env, "dnf")
	if err != nil {
		return nil, err
	}
	conf := fmt.Sprintf(`[main]
reposdir=%[1]s/repos.d
cachedir=%[1]s/cache
persistdir=%[1]s/persist
logdir=%[1]s
gpgcheck=0
install_weak_deps=False

[kiln-dev]
name=kiln dev channel
baseurl=%[2]s
enabled=1
repo_gpgcheck=1
gpgkey=file://%[3]s
metadata_expire=0
`, dir, env.Job.RepoURL, key)
	for _, d := range []string{"repos.d", "cache", "persist"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	path := filepath.Join(dir, "dnf.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	return []string{"dnf", "-q", "-y", "--config", path, "--releasever", "kiln", "--installroot", filepath.Join(dir, "root"), "--setopt=cachedir=" + filepath.Join(dir, "cache")}, nil
}
