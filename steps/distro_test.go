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
	summary string            // must appear in the step's summary, not only in the log
	with    map[string]string // the step's with:
}

// runFailureCases runs step on each case's fixture, as mutate leaves it,
// and checks the error, the summary (one short line) and that nothing was
// left in dist/ for the upload step. One table per step and format.
func runFailureCases(t *testing.T, step Step, format, target string, cases []failureCase) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			env, log := fixtureEnv(t, tt.fixture, format, target)
			tt.mutate(t, env.Workspace)
			o, err := runStep(t, step, env, tt.with)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v\n%s", err, tt.want, log)
			}
			if !strings.Contains(o.Summary, tt.summary) {
				t.Errorf("summary %q lacks %q", o.Summary, tt.summary)
			}
			if strings.Contains(o.Summary, "\n") || len([]rune(o.Summary)) > maxSummary {
				t.Errorf("summary is not one short line: %q", o.Summary)
			}
			if m, _ := filepath.Glob(filepath.Join(env.Workspace, "dist", "*")); len(m) > 0 {
				t.Errorf("a failed build left files to upload: %v", m)
			}
		})
	}
}

// The forms of the reasons that cannot be captured on a test host (they
// come from inside a chroot), and the precedence between reasons. Output
// captured from the real tools is in testdata/failures, read by
// reasons_test.go.
func TestDiagnosis(t *testing.T) {
	tests := []struct {
		name   string
		output string
		want   error
		reason string
	}{
		// pbuilder's default resolver (aptitude, pbuilder-satisfydepends-dummy);
		// the real pbuilder e2e test TestPbuilderUnmetBuildDependency sees it.
		{"pbuilder satisfydepends", "The following packages have unmet dependencies:\n pbuilder-satisfydepends-dummy : Depends: libgreet-dev but it is not installable\nE: Unable to correct problems, you have held broken packages.\n", ErrBuildDeps, "libgreet-dev but it is not installable"},
		// dnf's solver inside mock, for a dependency no repository provides.
		{"dnf in mock", "  - nothing provides libfoo-devel >= 2 needed by greeter-1.0-1.src\n", ErrBuildDeps, "libfoo-devel >= 2"},
		// pbuilder's copy of the .dsc's files into the chroot.
		{"pbuilder copydsc", "cp: cannot stat '/ws/dist/source/hello_1.0.orig.tar.gz': No such file or directory\n", ErrMissingOrig, "hello_1.0.orig.tar.gz: the source step takes it"},
		{"deps win over the compile error they cause", "x.c:1:1: error: boom\ndpkg-checkbuilddeps: error: Unmet build dependencies: libgreet-dev\n", ErrBuildDeps, "libgreet-dev"},
		{"a missing orig wins over the dpkg-source error it causes", "dpkg-source: error: something else\ndpkg-source: error: cannot copy ./a_1.orig.tar.xz to /t/a_1.orig.tar.xz: No such file or directory\n", ErrMissingOrig, "a_1.orig.tar.xz"},
		{"a dpkg-source error wins over a compile error", "x.c:1:1: error: boom\ndpkg-source: error: unrepresentable changes to source\n", ErrBuildFailed, "package build failed: dpkg-source: error: unrepresentable changes to source"},
		{"nothing recognisable", "make: *** [Makefile:3: all] Error 2\n", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d diagnosis
			for l := range strings.SplitSeq(strings.TrimSuffix(tt.output, "\n"), "\n") {
				d.observe(l)
			}
			err := d.err(ErrBuildFailed)
			if !errors.Is(err, tt.want) || (err == nil) != (tt.want == nil) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if err != nil && !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("err = %q, want it to contain %q", err, tt.reason)
			}
		})
	}
}
