package steps

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/internal/kilntest"
)

// standInMock is NOT mock: mock cannot run on the Debian test hosts (no
// CentOS repositories are reachable). This stand-in records its argument
// vector and the config it was given, for the test to check, and then does
// what mock --rebuild would inside the chroot: rpmbuild --rebuild of the
// source rpm, with the build dependencies checked against an empty rpm
// database (a fresh chroot's), results into --resultdir. See
// docs/distro-builds.md for the real invocation it corresponds to.
const standInMock = `#!/bin/sh
set -e
printf '%s\n' "$@" > "$STANDIN_ARGV"
case "$2" in *.cfg) cp "$2" "$STANDIN_ARGV.cfg" ;; esac
[ "$1" = -r ] && [ "$3" = --rebuild ] && [ "$5" = --resultdir ] || { echo "stand-in mock: unexpected arguments: $*" >&2; exit 2; }
top=$(mktemp -d)
trap 'rm -rf "$top"' EXIT
mkdir -p "$top/db"
rpm --dbpath "$top/db" --initdb
rpmbuild --dbpath "$top/db" --define "_topdir $top" --rebuild "$4"
cp "$top"/RPMS/*/*.rpm "$4" "$6"/
`

func TestMockStandIn(t *testing.T) {
	kilntest.NeedTool(t, "rpmbuild", "rpmspec", "rpm", "gcc")
	bin := t.TempDir()
	writeFile(t, filepath.Join(bin, "mock"), standInMock)
	if err := os.Chmod(filepath.Join(bin, "mock"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	const key = "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nxsBNBGc=\n-----END PGP PUBLIC KEY BLOCK-----\n"
	tests := []struct {
		name     string
		fixture  string
		target   string
		repoURL  string
		with     map[string]string
		root     string // the -r argument; "" for the generated config
		want     error
		summary  string
		cfgLines []string
	}{
		{name: "no dev channel", fixture: "libgreet", target: "centos/9/x86_64", root: "centos-stream-9-x86_64", summary: "libgreet-devel-1.0-1.x86_64.rpm"},
		{name: "named root", fixture: "libgreet", target: "rocky/9/x86_64", with: map[string]string{"root": "alma-9-x86_64"}, root: "alma-9-x86_64", summary: "libgreet-1.0-1.x86_64.rpm"},
		{name: "dev channel", fixture: "libgreet", target: "rocky/9/x86_64", repoURL: "http://farm:8010/repos/dev/yum/rocky/9/x86_64", summary: "libgreet-1.0-1.x86_64.rpm",
			cfgLines: []string{"include('rocky-9-x86_64.cfg')", "baseurl=http://farm:8010/repos/dev/yum/rocky/9/x86_64", "repo_gpgcheck=1", "gpgkey=file://"}},
		// The stand-in's chroot has no libgreet-devel, as a real one without the dev channel would not.
		{name: "unmet build dependency", fixture: "greeter", target: "centos/9/x86_64", root: "centos-stream-9-x86_64", want: ErrBuildDeps, summary: "libgreet-devel"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, log := fixtureEnv(t, tt.fixture, "yum", tt.target)
			env.Job.RepoURL = tt.repoURL
			if tt.repoURL != "" {
				env.Job.RepoKey = key
			}
			argvFile := filepath.Join(t.TempDir(), "argv")
			t.Setenv("STANDIN_ARGV", argvFile)
			if o, err := runStep(t, Source{}, env, nil); err != nil {
				t.Fatalf("source: %v (%s)\n%s", err, o.Summary, log)
			}
			o, err := runStep(t, Mock{}, env, tt.with)
			if !errors.Is(err, tt.want) || (err == nil) != (tt.want == nil) {
				t.Fatalf("err = %v, want %v\n%s", err, tt.want, log)
			}
			if !strings.Contains(o.Summary, tt.summary) {
				t.Errorf("summary %q lacks %q", o.Summary, tt.summary)
			}
			b, err := os.ReadFile(argvFile)
			if err != nil {
				t.Fatal(err)
			}
			srpm, _ := env.Props.Get("srpm")
			root := tt.root
			if root == "" {
				root = filepath.Join(env.Workspace, ".kiln/mock/kiln-dev.cfg")
			}
			want := strings.Join([]string{"-r", root, "--rebuild", filepath.Join(env.Workspace, srpm), "--resultdir", filepath.Join(env.Workspace, "dist")}, "\n") + "\n"
			if string(b) != want {
				t.Errorf("mock argv:\n%s\nwant:\n%s", b, want)
			}
			if len(tt.cfgLines) > 0 {
				cfg, err := os.ReadFile(argvFile + ".cfg")
				if err != nil {
					t.Fatal(err)
				}
				for _, l := range tt.cfgLines {
					if !strings.Contains(string(cfg), l) {
						t.Errorf("config lacks %q:\n%s", l, cfg)
					}
				}
			}
		})
	}
}
