package steps

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/kiln-build/kiln/protocol"
)

// Mock rebuilds a source rpm in a mock chroot:
// mock -r CONFIG --rebuild SRPM --resultdir DIR.
//
// with: root (mock config name, default from the target: centos/9/x86_64
// is centos-stream-9-x86_64, rocky/9/x86_64 rocky-9-x86_64, ...), srpm
// (default ${prop.srpm}, set by the source step), dir (results, default
// "dist").
//
// With a dev channel in the job, CONFIG is a generated file in the
// workspace that includes the root's config and adds the channel as a
// repository with repo_gpgcheck against RepoKey, so build dependencies
// published earlier in the buildset resolve inside the chroot.
type Mock struct{}

// mockRootPrefix maps a target's distro to the prefix of mock-core-configs'
// config names.
var mockRootPrefix = map[string]string{
	"centos":    "centos-stream",
	"almalinux": "alma",
	"alma":      "alma",
	"rocky":     "rocky",
	"rhel":      "rhel",
	"fedora":    "fedora",
	"oracle":    "oraclelinux",
}

func (Mock) Run(ctx context.Context, env *Env, spec protocol.Step) (Outcome, error) {
	outDir, err := stepDir(env, spec.With, "dir", "dist")
	if err != nil {
		return fail(fmt.Errorf("mock: %w", err))
	}
	srpmRel := spec.With["srpm"]
	if srpmRel == "" {
		srpmRel, _ = env.Props.Get("srpm")
	}
	if srpmRel == "" {
		return fail(fmt.Errorf("mock: %w: no srpm given and no srpm property (run the source step first)", ErrMissingSource))
	}
	srpm, err := env.Path(srpmRel)
	if err != nil {
		return fail(fmt.Errorf("mock srpm: %w", err))
	}
	root := spec.With["root"]
	if root == "" {
		distro, _ := env.Props.Get("distro")
		version, _ := env.Props.Get("distro_version")
		arch, _ := env.Props.Get("arch")
		root = withDefault(mockRootPrefix[distro], distro) + "-" + version + "-" + arch
	}
	cfg, err := mockConfig(env, root)
	if err != nil {
		return fail(fmt.Errorf("mock: %w", err))
	}
	out, err := runTool(ctx, env, ".", spec.Timeout, nil, "mock", "-r", cfg, "--rebuild", srpm, "--resultdir", outDir)
	if err != nil {
		return fail(out.failure("mock", err, ErrBuildFailed))
	}
	rpms, err := globFiles(outDir, "*.rpm")
	if err != nil {
		return fail(fmt.Errorf("mock: %w", err))
	}
	var names []string
	for _, r := range rpms {
		if !strings.HasSuffix(r, ".src.rpm") {
			names = append(names, filepath.Base(r))
		}
	}
	return Outcome{Summary: fmt.Sprintf("%s: %s", root, packageList(names))}, nil
}

// mockDevRepo includes the root's config and adds the dev channel to its
// dnf.conf. The key file lives in the workspace, outside the chroot; the
// bind mount makes its directory visible inside (see docs/distro-builds.md
// for what was verified against real mock).
const mockDevRepo = `# Written by kiln: %[1]s plus the farm's dev channel.
include('%[1]s.cfg')
config_opts['plugin_conf']['bind_mount_enable'] = True
config_opts['plugin_conf']['bind_mount_opts']['dirs'].append(('%[2]s', '%[2]s'))
config_opts['dnf.conf'] += """
[kiln-dev]
name=kiln dev channel
baseurl=%[3]s
enabled=1
gpgcheck=0
repo_gpgcheck=1
gpgkey=file://%[4]s
metadata_expire=0
"""
`

// mockConfig returns what to pass to mock -r: the root itself without a
// dev channel, else the generated config that adds it.
func mockConfig(env *Env, root string) (string, error) {
	if strings.ContainsAny(root, "'\"\\/\n") {
		return "", fmt.Errorf("mock root %q is not a config name", root)
	}
	if env.Job.RepoURL == "" {
		return root, nil
	}
	keyDir, key, err := writeRepoKey(env, "mock")
	if err != nil {
		return "", err
	}
	cfg := filepath.Join(keyDir, "kiln-dev.cfg")
	content := fmt.Sprintf(mockDevRepo, root, keyDir, env.Job.RepoURL, key)
	if err := os.WriteFile(cfg, []byte(content), 0o644); err != nil {
		return "", err
	}
	return cfg, nil
}

// writeRepoKey validates the job's dev channel and writes its key to
// .kiln/NAME/kiln-dev.asc; it returns the directory and the key's path.
func writeRepoKey(env *Env, name string) (dir, key string, err error) {
	if err := checkDevChannel(env.Job); err != nil {
		return "", "", err
	}
	dir, err = env.Path(".kiln/" + name)
	if err != nil {
		return "", "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", err
	}
	key = filepath.Join(dir, "kiln-dev.asc")
	if err := os.WriteFile(key, []byte(env.Job.RepoKey), 0o644); err != nil {
		return "", "", err
	}
	return dir, key, nil
}
