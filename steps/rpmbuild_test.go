package steps

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRPMBuild(t *testing.T) {
	needTools(t, "rpmbuild", "rpmspec", "rpm", "gcc")
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
	needTools(t, "rpmbuild", "rpmspec", "rpm", "gcc")
	tests := []struct {
		name    string
		fixture string
		mutate  func(t *testing.T, ws string)
		want    error
		summary string
	}{
		// No dev channel, so nothing provides libgreet-devel.
		{"unmet build dependency", "greeter", func(*testing.T, string) {}, ErrBuildDeps, "libgreet-devel"},
		{"compile error", "libgreet", func(t *testing.T, ws string) {
			writeFile(t, filepath.Join(ws, "greet.c"), "#include \"greet.h\"\nconst char *greet(const char *n) { return n }\n")
		}, ErrCompile, "greet.c:2:"},
		{"no spec", "libgreet", func(t *testing.T, ws string) { rmAll(t, ws, "libgreet.spec") }, ErrNoPackaging, "no *.spec"},
		{"bad spec", "libgreet", func(t *testing.T, ws string) {
			writeFile(t, filepath.Join(ws, "libgreet.spec"), "Name: libgreet\nVersion 1.0\n")
		}, ErrBadSpec, "Unknown tag"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, log := fixtureEnv(t, tt.fixture, "yum", "centos/9/x86_64")
			tt.mutate(t, env.Workspace)
			o, err := runStep(t, RPMBuild{}, env, nil)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v\n%s", err, tt.want, log)
			}
			if !strings.Contains(o.Summary, tt.summary) {
				t.Errorf("summary %q lacks %q", o.Summary, tt.summary)
			}
		})
	}
}
