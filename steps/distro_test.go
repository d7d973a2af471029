package steps

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/protocol"
)

func jobFor(target, format string) protocol.Job {
	return protocol.Job{Build: "b1", Component: "pkg", Target: target, Format: format}
}

// fixtureEnv is a workspace holding a copy of testdata/NAME, as the
// checkout step would leave it, for a job of the given format.
func fixtureEnv(t *testing.T, name, format, target string) (*Env, *recLog) {
	t.Helper()
	job := jobFor(target, format)
	job.Component = name
	env, log := newTestEnv(t, job)
	if err := copyTree(filepath.Join("testdata", name), env.Workspace); err != nil {
		t.Fatal(err)
	}
	return env, log
}

func runStep(t *testing.T, s Step, env *Env, with map[string]string) (Outcome, error) {
	t.Helper()
	return s.Run(context.Background(), env, protocol.Step{With: with})
}

// failureCase is a build that must fail with a reason a person can act on.
type failureCase struct {
	name    string
	fixture string
	mutate  func(t *testing.T, ws string)
	want    error
	summary string // must appear in the step's summary, not only in the log
}

// runFailureCases runs step on each case's fixture and checks the error,
// the summary and that nothing was left in dist/ for the upload step.
func runFailureCases(t *testing.T, step Step, format, target string, cases []failureCase) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			env, log := fixtureEnv(t, tt.fixture, format, target)
			tt.mutate(t, env.Workspace)
			o, err := runStep(t, step, env, nil)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v\n%s", err, tt.want, log)
			}
			if !strings.Contains(o.Summary, tt.summary) {
				t.Errorf("summary %q lacks %q", o.Summary, tt.summary)
			}
			if m, _ := filepath.Glob(filepath.Join(env.Workspace, "dist", "*")); len(m) > 0 {
				t.Errorf("a failed build left files to upload: %v", m)
			}
		})
	}
}

func TestDiagnosis(t *testing.T) {
	tests := []struct {
		name   string
		output string
		want   error
		reason string
	}{
		{"dpkg-checkbuilddeps", "dpkg-checkbuilddeps: error: Unmet build dependencies: libgreet-dev, libfoo (>= 2)\n", ErrBuildDeps, "libgreet-dev; libfoo (>= 2)"},
		{"pbuilder satisfydepends", "The following packages have unmet dependencies:\n pbuilder-satisfydepends-dummy : Depends: libgreet-dev but it is not installable\nE: Unable to correct problems, you have held broken packages.\n", ErrBuildDeps, "libgreet-dev but it is not installable"},
		{"rpmbuild", "error: Failed build dependencies:\n\tlibgreet-devel is needed by greeter-1.0-1.x86_64\n\tzlib-devel >= 1.2 is needed by greeter-1.0-1.x86_64\n", ErrBuildDeps, "libgreet-devel; zlib-devel >= 1.2"},
		{"dnf in mock", "No matching package to install: 'libgreet-devel'\n  - nothing provides libfoo-devel >= 2 needed by greeter-1.0-1.src\n", ErrBuildDeps, "libgreet-devel; libfoo-devel >= 2"},
		{"gcc", "cc -O2 -c greet.c\ngreet.c:7:2: error: expected ';' before '}' token\ngreet.c:9:1: error: second\n", ErrCompile, "greet.c:7:2: error: expected ';' before '}' token"},
		{"fatal", "main.c:1:10: fatal error: greet.h: No such file or directory\n", ErrCompile, "greet.h: No such file"},
		{"deps win over the compile error they cause", "x.c:1:1: error: boom\ndpkg-checkbuilddeps: error: Unmet build dependencies: libgreet-dev\n", ErrBuildDeps, "libgreet-dev"},
		{"nothing recognisable", "make: *** [Makefile:3: all] Error 2\n", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d diagnosis
			for l := range strings.SplitSeq(strings.TrimSuffix(tt.output, "\n"), "\n") {
				d.observe(l)
			}
			err := d.err()
			if !errors.Is(err, tt.want) || (err == nil) != (tt.want == nil) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if err != nil && !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("err = %q, want it to contain %q", err, tt.reason)
			}
		})
	}
}
