// Package pkgclient runs the real package clients, apt-get and dnf, each
// confined to a temp dir (its own config, lists, cache, keyring and install
// root, never the host's), for tests that check what users' machines
// accept. It is used by tests only.
package pkgclient

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
)

// Apt is an apt that only knows its temp dir. Dir/cache/archives holds what
// it downloads.
type Apt struct {
	Dir string
	env []string
}

// NewApt configures an apt for amd64 with sources (a deb822 .sources file,
// Signed-By inline) as its only source.
func NewApt(t testing.TB, sources string) *Apt {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{"state/lists/partial", "cache/archives/partial", "etc/sources.list.d", "etc/apt.conf.d", "etc/preferences.d", "etc/trusted.gpg.d", "log", "dl"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "state/status"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "etc/sources.list.d/kiln.sources"), []byte(sources), 0o644); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf(`Dir::State "%[1]s/state";
Dir::State::status "%[1]s/state/status";
Dir::Cache "%[1]s/cache";
Dir::Etc "%[1]s/etc";
Dir::Etc::SourceList "%[1]s/etc/sources.list";
Dir::Etc::SourceParts "%[1]s/etc/sources.list.d";
Dir::Etc::Parts "%[1]s/etc/apt.conf.d";
Dir::Etc::PreferencesParts "%[1]s/etc/preferences.d";
Dir::Etc::TrustedParts "%[1]s/etc/trusted.gpg.d";
Dir::Etc::Trusted "%[1]s/etc/trusted.gpg";
Dir::Log "%[1]s/log";
APT::Architecture "amd64";
APT::Architectures { "amd64"; };
Acquire::Languages "none";
Acquire::Retries "0";
APT::Sandbox::User "root";
Debug::NoLocking "true";
`, dir)
	if err := os.WriteFile(filepath.Join(dir, "apt.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	return &Apt{Dir: dir, env: []string{"APT_CONFIG=" + filepath.Join(dir, "apt.conf")}}
}

// Run runs apt-get with args and returns its combined output.
func (a *Apt) Run(args ...string) (string, error) {
	return Run(filepath.Join(a.Dir, "dl"), a.env, "apt-get", args...)
}

// Forget drops downloaded lists so the next update fetches everything again.
func (a *Apt) Forget(t testing.TB) {
	t.Helper()
	if err := os.RemoveAll(filepath.Join(a.Dir, "state/lists")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(a.Dir, "state/lists/partial"), 0o755); err != nil {
		t.Fatal(err)
	}
}

// Dnf is a dnf confined to a temp dir; Dir/root is its install root.
type Dnf struct {
	Dir  string
	args []string
}

// NewDnf configures a dnf (release 9) whose only repository is repoFile.
func NewDnf(t testing.TB, repoFile string) *Dnf {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{"repos", "root", "cache"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "repos", "kiln.repo"), []byte(repoFile), 0o644); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf("[main]\ncachedir=%s/cache\nreposdir=%s/repos\nkeepcache=0\ninstall_weak_deps=0\nplugins=0\n", dir, dir)
	if err := os.WriteFile(filepath.Join(dir, "dnf.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	return &Dnf{Dir: dir, args: []string{
		"--config", filepath.Join(dir, "dnf.conf"), "--installroot", filepath.Join(dir, "root"),
		"--releasever", "9", "--setopt=reposdir=" + filepath.Join(dir, "repos"),
		"--setopt=cachedir=" + filepath.Join(dir, "cache"), "--noplugins", "-y",
	}}
}

// Run runs dnf with args and returns its combined output.
func (d *Dnf) Run(args ...string) (string, error) {
	return Run(d.Dir, nil, "dnf", append(append([]string(nil), d.args...), args...)...)
}

// RunPlugins runs dnf with its plugins (download, debuginfo-install).
func (d *Dnf) RunPlugins(args ...string) (string, error) {
	base := slices.DeleteFunc(slices.Clone(d.args), func(a string) bool { return a == "--noplugins" })
	return Run(d.Dir, nil, "dnf", append(append(base, "--setopt=plugins=1"), args...)...)
}

// Run runs a command in dir with env added and returns its combined output.
func Run(dir string, env []string, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}
