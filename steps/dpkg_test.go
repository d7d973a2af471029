package steps

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/internal/kilntest"
)

func TestDpkg(t *testing.T) {
	kilntest.NeedTool(t, "dpkg-buildpackage", "dh", "gcc")
	env, log := fixtureEnv(t, "libgreet", "apt", "debian/bookworm/amd64")
	o, err := runStep(t, Dpkg{}, env, nil)
	if err != nil {
		t.Fatalf("dpkg: %v (%s)\n%s", err, o.Summary, log)
	}
	for _, f := range []string{"libgreet1_1.0-1_amd64.deb", "libgreet-dev_1.0-1_amd64.deb", "libgreet_1.0-1_amd64.changes", "libgreet_1.0-1_amd64.buildinfo"} {
		if _, err := os.Stat(filepath.Join(env.Workspace, "dist", f)); err != nil {
			t.Errorf("missing dist/%s: %v", f, err)
		}
	}
	if !strings.Contains(o.Summary, "libgreet1_1.0-1_amd64.deb") {
		t.Errorf("summary %q", o.Summary)
	}
}

// The reasons a person needs are in the summary, not only in the log.
func TestDpkgFailureReasons(t *testing.T) {
	kilntest.NeedTool(t, "dpkg-buildpackage", "dh", "gcc")
	runFailureCases(t, Dpkg{}, "apt", "debian/bookworm/amd64", []failureCase{
		// libgreet-dev is not installed on the host: the program cannot build.
		{"unmet build dependency", "greeter", func(*testing.T, string) {}, ErrBuildDeps, "libgreet-dev", nil},
		{"compile error", "libgreet", func(t *testing.T, ws string) {
			writeFile(t, filepath.Join(ws, "greet.c"), "#include \"greet.h\"\nconst char *greet(const char *n) { return n }\n")
		}, ErrCompile, "greet.c:2:", nil},
		{"no debian dir", "libgreet", func(t *testing.T, ws string) { rmAll(t, ws, "debian") }, ErrNoPackaging, "no debian/", nil},
	})
}
