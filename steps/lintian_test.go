package steps

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/internal/kilntest"
)

// lintianTmp points TMPDIR, where the lintian step stages its input, at a
// new directory that nobody can enter (t.TempDir's are root's alone), and
// checks at the end that the step left nothing there.
func lintianTmp(t *testing.T) {
	t.Helper()
	dir, err := os.MkdirTemp("", "kiln-lintian-test-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TMPDIR", dir)
	t.Cleanup(func() {
		if left, _ := os.ReadDir(dir); len(left) > 0 {
			t.Errorf("the lintian step left %v in TMPDIR", left)
		}
		os.RemoveAll(dir)
	})
}

// lintianRanAsRoot says whether lintian ran with root privileges: lintian
// itself says so then.
func lintianRanAsRoot(log *recLog) bool { return log.has("running with root privileges") }

// A real lintian run on testdata/hello, built by the dpkg step: as it is,
// lintian finds one warning (no-manual-page); without debian/copyright and
// with a distribution lintian does not know, two errors
// (no-copyright-file, bad-distribution-in-changes-file). The summary names
// the tags; fail_on decides whether they fail the step. When the test runs
// as root, lintian must not.
func TestLintian(t *testing.T) {
	kilntest.NeedTool(t, "dpkg-buildpackage", "dh", "lintian")
	lintianTmp(t)
	tests := []struct {
		name      string
		broken    bool
		with      map[string]string
		want      error
		errors    string
		errorTags string
		summary   string
	}{
		{"clean, default records", false, nil, nil, "0", "", "lintian: 0 errors, 1 warning (no-manual-page)"},
		{"error and warning, default records", true, nil, nil, "2", "hello: bad-distribution-in-changes-file hello: no-copyright-file",
			"lintian: 2 errors (bad-distribution-in-changes-file, no-copyright-file), 1 warning (no-manual-page)"},
		{"error, fail_on error", true, map[string]string{"fail_on": "error"}, ErrLint, "2", "hello: bad-distribution-in-changes-file hello: no-copyright-file",
			"lintian: lint errors: 2 errors (bad-distribution-in-changes-file, no-copyright-file), 1 warning (no-manual-page)"},
		{"warning, fail_on error", false, map[string]string{"fail_on": "error"}, nil, "0", "", "lintian: 0 errors, 1 warning (no-manual-page)"},
		{"warning, fail_on warning", false, map[string]string{"fail_on": "warning"}, ErrLint, "0", "", "lintian: lint errors: 0 errors, 1 warning (no-manual-page)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, log := fixtureEnv(t, "hello", "apt", "debian/bookworm/amd64")
			if tt.broken {
				rmAll(t, env.Workspace, "debian/copyright")
				cl := filepath.Join(env.Workspace, "debian/changelog")
				b, err := os.ReadFile(cl)
				if err != nil {
					t.Fatal(err)
				}
				writeFile(t, cl, strings.Replace(string(b), ") bookworm;", ") kiln-dev;", 1))
			}
			if o, err := runStep(t, Dpkg{}, env, nil); err != nil {
				t.Fatalf("dpkg: %v (%s)\n%s", err, o.Summary, log)
			}
			o, err := runStep(t, Lintian{}, env, tt.with)
			if !errors.Is(err, tt.want) || (err == nil) != (tt.want == nil) {
				t.Fatalf("err = %v, want %v\n%s", err, tt.want, log)
			}
			if o.Summary != tt.summary {
				t.Errorf("summary\n%q, want\n%q", o.Summary, tt.summary)
			}
			if got, _ := env.Props.Get("lintian_errors"); got != tt.errors {
				t.Errorf("lintian_errors = %q, want %q", got, tt.errors)
			}
			if got, _ := env.Props.Get("lintian_error_tags"); got != tt.errorTags {
				t.Errorf("lintian_error_tags = %q, want %q", got, tt.errorTags)
			}
			if lintianRanAsRoot(log) {
				t.Errorf("lintian ran as root:\n%s", log)
			}
		})
	}
}

// A Debian revision after the first of an upstream version makes a
// "binary and diff" upload: its .changes does not list the orig tarball,
// pbuilder copies only what the .changes lists into dist/, and lintian,
// unpacking the source package the .changes names, needs the orig next
// to the .dsc. testdata/hello is 1.0-3 with three changelog entries, so
// dpkg-genchanges leaves the orig out as it would for a real package. The
// pbuilder step puts it back beside the .dsc; without it, the lintian step
// names the missing file and how to provide one.
func TestLintianRevision3Upload(t *testing.T) {
	kilntest.NeedTool(t, "dpkg-source", "dpkg-buildpackage", "dpkg-genchanges", "dh", "lintian")
	standIn(t, "pbuilder", standInPbuilderDpkg)
	lintianTmp(t)
	env, log := fixtureEnv(t, "hello", "apt", "debian/bookworm/amd64")
	// As the checkout step sets it: the orig tarball's files get the
	// commit's time (1970 would be lintian's package-contains-ancient-file).
	env.Props.Set("commit_time", "1795435200")
	for _, s := range []Step{Source{}, Pbuilder{}} {
		if o, err := runStep(t, s, env, nil); err != nil {
			t.Fatalf("%T: %v (%s)\n%s", s, err, o.Summary, log)
		}
	}
	dist := filepath.Join(env.Workspace, "dist")
	changes, err := os.ReadFile(filepath.Join(dist, "hello_1.0-3_amd64.changes"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(changes), ".orig.tar") {
		t.Fatalf("the fixture's .changes lists the orig tarball, so this test proves nothing:\n%s", changes)
	}
	o, err := runStep(t, Lintian{}, env, nil)
	if err != nil {
		t.Fatalf("lintian: %v (%s)\n%s", err, o.Summary, log)
	}
	if got, _ := env.Props.Get("lintian_errors"); got != "0" {
		t.Errorf("lintian_errors = %q (%s)\n%s", got, o.Summary, log)
	}
	if !log.has("hello_1.0-3_source.changes") {
		t.Errorf("lintian did not get both .changes pbuilder leaves:\n%s", log)
	}

	// A .changes whose source package lacks its orig, as pbuilder alone
	// leaves it: named before lintian runs.
	rmAll(t, env.Workspace, "dist/hello_1.0.orig.tar.gz")
	o, err = runStep(t, Lintian{}, env, nil)
	if !errors.Is(err, ErrMissingOrig) {
		t.Fatalf("err = %v, want %v", err, ErrMissingOrig)
	}
	for _, want := range []string{"lintian: missing orig tarball hello_1.0.orig.tar.gz: not next to dist/hello_1.0-3.dsc", "with: orig or orig_url"} {
		if !strings.Contains(o.Summary, want) {
			t.Errorf("summary %q lacks %q", o.Summary, want)
		}
	}
}

// As root, a tool runs as its account through setpriv; otherwise as is.
// Only a tool that needs setuid helpers (sbuild's newuidmap) may gain
// privileges.
func TestAccountArgv(t *testing.T) {
	plain := []string{"lintian", "a.changes"}
	var none *account
	if got := none.argv(true, plain); !slices.Equal(got, plain) {
		t.Errorf("not root: %q", got)
	}
	priv := []string{"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all"}
	nobody := &account{name: "nobody", uid: 65534, gid: 65534}
	if got, want := nobody.argv(true, plain), slices.Concat(priv, []string{"--no-new-privs", "--"}, plain); !slices.Equal(got, want) {
		t.Errorf("root: %q", got)
	}
	if got, want := nobody.argv(false, plain), slices.Concat(priv, []string{"--"}, plain); !slices.Equal(got, want) {
		t.Errorf("root, setuid helpers allowed: %q", got)
	}
}

// A stage nobody cannot reach fails with the reason, not deep in lintian.
func TestLintianStageUnreachable(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only a root worker drops to nobody")
	}
	env, _ := newTestEnv(t, jobFor("debian/bookworm/amd64", "apt"))
	writeFile(t, filepath.Join(env.Workspace, "dist/x_1_all.deb"), "not a deb")
	t.Setenv("TMPDIR", t.TempDir()) // 0700: root's alone
	o, err := runStep(t, Lintian{}, env, nil)
	if err == nil || !strings.Contains(o.Summary, "is not searchable by others") {
		t.Fatalf("err = %v, summary %q", err, o.Summary)
	}
}

// A .changes naming a file outside its directory is refused: the copy is
// made as root for another user.
func TestLintianStageRefusesPaths(t *testing.T) {
	env, _ := newTestEnv(t, jobFor("debian/bookworm/amd64", "apt"))
	writeFile(t, filepath.Join(env.Workspace, "dist/x_1_amd64.changes"),
		"Source: x\nFiles:\n 0123 10 misc optional ../../etc/shadow\n")
	st, err := stageFor(env, "lintian", []string{filepath.Join(env.Workspace, "dist/x_1_amd64.changes")}, nil)
	if st != nil {
		defer st.remove(env)
	}
	if err == nil || !strings.Contains(err.Error(), "not a plain file name") {
		t.Fatalf("err = %v", err)
	}
}

func TestLintBadFailOn(t *testing.T) {
	env, _ := newTestEnv(t, jobFor("debian/bookworm/amd64", "apt"))
	if _, err := lintOutcome(env, "lintian", map[string]string{"fail_on": "sometimes"}, lintFindings{}); err == nil || !strings.Contains(err.Error(), "want none, error or warning") {
		t.Fatalf("err = %v", err)
	}
}
