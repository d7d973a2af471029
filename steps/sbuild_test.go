package steps

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Stand-ins for mmdebstrap and sbuild: each logs its command line; sbuild
// writes a .deb into its --build-dir as the real one does. Real sbuild
// builds in make e2e (TestSbuildChain).
const (
	standInMmdebstrap = `#!/bin/sh
echo "mmdebstrap $*" >> "$STANDIN_LOG"
echo tar > "$(echo "$@" | awk '{print $(NF-1)}')"
`
	standInSbuild = `#!/bin/sh
echo "sbuild $*" >> "$STANDIN_LOG"
for a; do case "$a" in --build-dir=*) dir=${a#--build-dir=} ;; esac; done
echo deb > "$dir/pkg_1.0+b2_amd64.deb"
`
)

func TestSbuildRebuildArgs(t *testing.T) {
	log := standIns(t, map[string]string{"sbuild": standInSbuild, "mmdebstrap": standInMmdebstrap})
	env := pbuilderEnv(t, t.TempDir())
	env.Job.Published = []string{"1.0", "1.0+b1"}
	env.Job.RepoURL = "http://farm:8010/repos/dev/apt/debian"
	env.Job.RepoKey = "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nxsBNBGc=\n-----END PGP PUBLIC KEY BLOCK-----\n"
	// As root the step builds as with: user; root itself here, so that the
	// stand-ins in the test's private directories can run and log.
	with := map[string]string{"user": "root"}
	o, err := runStep(t, Sbuild{}, env, with)
	if err != nil {
		t.Fatalf("%v (%s)", err, o.Summary)
	}
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	calls := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(calls) != 2 || !strings.HasPrefix(calls[0], "mmdebstrap --variant=buildd --mode=unshare") {
		t.Fatalf("calls %q, want mmdebstrap then sbuild", calls)
	}
	for _, want := range []string{"--chroot-mode=unshare", "--dist=bookworm", "--arch=amd64", "--binNMU=2", "--no-arch-all",
		"--maintainer=A B <a@b.example>", "--extra-repository=deb http://farm:8010/repos/dev/apt/debian bookworm main", " pkg_1.0.dsc"} {
		if !strings.Contains(calls[1], want) {
			t.Errorf("sbuild %s\nlacks %q", calls[1], want)
		}
	}
	if _, err := os.Stat(filepath.Join(env.Workspace, "dist/pkg_1.0+b2_amd64.deb")); err != nil || !strings.Contains(o.Summary, "rebuild +b2") {
		t.Errorf("result %v, summary %q", err, o.Summary)
	}
}

// A root worker without the build user says what is missing before it
// makes a tarball.
func TestSbuildWithoutItsUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only a root worker builds as another user")
	}
	log := standIn(t, "sbuild", standInSbuild)
	env := pbuilderEnv(t, t.TempDir())
	o, err := runStep(t, Sbuild{}, env, map[string]string{"user": "kiln-no-such-user"})
	if err == nil || !strings.Contains(o.Summary, "no user kiln-no-such-user") {
		t.Fatalf("err %v, summary %q", err, o.Summary)
	}
	if calls := standInCalls(t, log); len(calls) != 0 {
		t.Errorf("ran %v", calls)
	}
}
