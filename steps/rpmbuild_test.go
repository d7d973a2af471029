package steps

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/kiln-build/kiln/internal/kilntest"
)

func TestRPMBuild(t *testing.T) {
	kilntest.NeedTool(t, "rpmbuild", "rpmspec", "rpm", "gcc")
	env, log := fixtureEnv(t, "libgreet", "yum", "centos/9/x86_64")
	o, err := runStep(t, RPMBuild{}, env, nil)
	if err != nil {
		t.Fatalf("rpmbuild: %v (%s)\n%s", err, o.Summary, log)
	}
	for _, f := range []string{"libgreet-1.0-1.x86_64.rpm", "libgreet-devel-1.0-1.x86_64.rpm"} {
		if _, err := os.Stat(filepath.Join(env.Workspace, "dist", f)); err != nil {
			t.Errorf("missing dist/%s: %v\n%s", f, err, log)
		}
	}
}

func TestRPMBuildFailureReasons(t *testing.T) {
	kilntest.NeedTool(t, "rpmbuild", "rpmspec", "rpm", "gcc")
	runFailureCases(t, RPMBuild{}, "yum", "centos/9/x86_64", []failureCase{
		// No dev channel, so nothing provides libgreet-devel.
		{"unmet build dependency", "greeter", func(*testing.T, string) {}, ErrBuildDeps, "libgreet-devel", nil},
		{"compile error", "libgreet", func(t *testing.T, ws string) {
			writeFile(t, filepath.Join(ws, "greet.c"), "#include \"greet.h\"\nconst char *greet(const char *n) { return n }\n")
		}, ErrCompile, "greet.c:2:", nil},
		{"no spec", "libgreet", func(t *testing.T, ws string) { rmAll(t, ws, "libgreet.spec") }, ErrNoPackaging, "no *.spec", nil},
		{"bad spec", "libgreet", func(t *testing.T, ws string) {
			writeFile(t, filepath.Join(ws, "libgreet.spec"), "Name: libgreet\nVersion 1.0\n")
		}, ErrBadSpec, "Unknown tag", nil},
	})
}
