package steps

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/protocol"
)

// reasonCase is the output of one real tool run, captured into
// testdata/failures/TOOL/CASE.out by testdata/failures/capture.sh, and
// the reason the step must put in its summary.
type reasonCase struct {
	file    string // under testdata/failures
	want    error
	summary string // must appear in the summary
}

// runReasonTable feeds each captured output to a step's failure handling
// as the step's log would receive it, line by line, and checks the error
// and the one-line summary a failed step shows. tool is the name the step
// gives the tool in its error; fallback, what the step wraps an
// unrecognised failure in.
func runReasonTable(t *testing.T, tool string, fallback error, cases []reasonCase) {
	t.Helper()
	exit := exec.Command("false").Run() // a real *exec.ExitError, as runTool returns
	for _, tt := range cases {
		t.Run(tt.file, func(t *testing.T) {
			out := capturedOutput(t, tt.file)
			o, err := fail(out.failure(tool, exit, fallback))
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if !strings.Contains(o.Summary, tt.summary) {
				t.Errorf("summary %q lacks %q", o.Summary, tt.summary)
			}
			if strings.Contains(o.Summary, "\n") || len([]rune(o.Summary)) > maxSummary {
				t.Errorf("summary is not one short line: %q", o.Summary)
			}
		})
	}
}

func capturedOutput(t *testing.T, file string) *toolOutput {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata/failures", file))
	if err != nil {
		t.Fatal(err)
	}
	out := &toolOutput{next: &recLog{}}
	for l := range strings.SplitSeq(strings.TrimSuffix(string(b), "\n"), "\n") {
		out.Line(l)
	}
	return out
}

// One table per tool, each row a real run of it.

func TestReasonsDpkgSource(t *testing.T) {
	runReasonTable(t, "dpkg-source", ErrBuildFailed, []reasonCase{
		// dpkg-source -b of 3.0 (quilt) with no orig tarball beside the tree.
		{"dpkg-source/no-orig.out", ErrMissingOrig, "dpkg-source: missing orig tarball libgreet_1.0.orig.tar.{bz2,gz,lzma,xz}: the source step takes it from the pristine-tar branch"},
		// dpkg-source -x of a .dsc whose orig went missing.
		{"dpkg-source/x-missing-orig.out", ErrMissingOrig, "missing orig tarball hello_1.0.orig.tar.gz"},
		{"dpkg-source/upstream-changes.out", ErrBuildFailed, "dpkg-source: package build failed: dpkg-source: error: aborting due to unexpected upstream changes"},
	})
}

func TestReasonsDpkgBuildpackage(t *testing.T) {
	runReasonTable(t, "dpkg-buildpackage", ErrBuildFailed, []reasonCase{
		{"dpkg-buildpackage/unmet-build-deps.out", ErrBuildDeps, "dpkg-buildpackage: unsatisfiable build dependency: libgreet-dev"},
		{"dpkg-buildpackage/compile-error.out", ErrCompile, "dpkg-buildpackage: compile error: greet.c:2:44: error: expected ‘;’ before ‘}’ token"},
	})
}

// apt as pbuilder's apt resolver (apt-get build-dep DSC) and sbuild run it.
func TestReasonsApt(t *testing.T) {
	runReasonTable(t, "pbuilder", ErrBuildFailed, []reasonCase{
		{"apt/build-dep-unmet.out", ErrBuildDeps, "pbuilder: unsatisfiable build dependency: libgreet-dev but it is not installable"},
	})
}

func TestReasonsRPMBuild(t *testing.T) {
	runReasonTable(t, "rpmbuild", ErrBuildFailed, []reasonCase{
		{"rpmbuild/failed-build-deps.out", ErrBuildDeps, "rpmbuild: unsatisfiable build dependency: libgreet-devel"},
		{"rpmbuild/compile-error.out", ErrCompile, "rpmbuild: compile error: greet.c:2:44: error: expected ';' before '}' token"},
	})
}

// dnf installing build dependencies, as mock does in its chroot.
func TestReasonsDNF(t *testing.T) {
	runReasonTable(t, "mock", ErrBuildFailed, []reasonCase{
		{"dnf/builddep-missing.out", ErrBuildDeps, "mock: unsatisfiable build dependency: libgreet-devel"},
	})
}

// lintian dying on a source package whose orig is not beside its .dsc: the
// step stages lintian's input so this no longer happens with the default
// steps (TestLintianRevision3Upload), but a .changes elsewhere still can.
func TestReasonsLintian(t *testing.T) {
	runReasonTable(t, "lintian", ErrToolFailed, []reasonCase{
		{"lintian/missing-orig.out", ErrMissingOrig, "lintian: missing orig tarball hello_1.0.orig.tar.gz"},
	})
}

// lintian's findings, parsed from its own tag lines, named in the summary.
func TestLintianFindingsSummary(t *testing.T) {
	const want = "lintian: 2 errors (bad-distribution-in-changes-file, no-copyright-file), 2 warnings (no-debian-copyright-in-source, no-manual-page)"
	for _, failOn := range []string{"none", "error"} {
		env, _ := newTestEnv(t, jobFor("debian/bookworm/amd64", "apt"))
		o, err := lintOutcome(env, "lintian", map[string]string{"fail_on": failOn}, scanLint(capturedOutput(t, "lintian/findings.out"), reLintian))
		switch failOn {
		case "none":
			if err != nil || o.Summary != want {
				t.Errorf("fail_on none: err = %v, summary\n%q, want\n%q", err, o.Summary, want)
			}
		case "error":
			if !errors.Is(err, ErrLint) || o.Summary != strings.Replace(want, "lintian: ", "lintian: lint errors: ", 1) {
				t.Errorf("fail_on error: err = %v, summary %q", err, o.Summary)
			}
		}
		if got, _ := env.Props.Get("lintian_error_tags"); got != "hello: bad-distribution-in-changes-file hello: no-copyright-file" {
			t.Errorf("lintian_error_tags = %q", got)
		}
	}
}

func TestLintCountsAndSummaryOneShortLine(t *testing.T) {
	var f lintFindings
	for _, tag := range []string{"b", "a", "b", "c", "d", "e", "f", "g", "h"} {
		f.errors = append(f.errors, lintFinding{"p", tag})
	}
	f.warnings = []lintFinding{{"p", "w"}}
	if got, want := lintCounts(f), "9 errors (b ×2, a, c, d, e, f, 2 more), 1 warning (w)"; got != want {
		t.Errorf("lintCounts = %q, want %q", got, want)
	}
	if got := lintCounts(lintFindings{}); got != "0 errors, 0 warnings" {
		t.Errorf("no findings: %q", got)
	}
	long := summaryLine(strings.Repeat("é", 400) + "\nsecond line")
	if r := []rune(long); len(r) != maxSummary || r[len(r)-1] != '…' || strings.Contains(long, "\n") {
		t.Errorf("summaryLine kept %d characters: %q", len(r), long)
	}
	if got := summaryLine("a\n  b"); got != "a b" {
		t.Errorf("summaryLine = %q", got)
	}
	// Every step's summary, through Run.
	env, _ := newTestEnv(t, jobFor("debian/bookworm/amd64", "apt"))
	o, err := Run(context.Background(), env, protocol.Step{Type: strings.Repeat("x", 2*maxSummary)})
	if err == nil || len([]rune(o.Summary)) != maxSummary {
		t.Errorf("Run: err = %v, summary of %d characters", err, len([]rune(o.Summary)))
	}
}
