package steps

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/internal/kilntest"
	"github.com/kiln-build/kiln/protocol"
	"github.com/kiln-build/kiln/repo/pkgmeta"
)

func TestRebuildNumber(t *testing.T) {
	tests := []struct {
		name      string
		rpm       bool
		base      string
		published []string
		want      int
	}{
		{"never published", false, "1.0-3", []string{"0.9-1", "1.0-2"}, 0},
		{"published once", false, "1.0-3", []string{"1.0-2", "1.0-3"}, 1},
		{"rebuilt before", false, "1.0-3", []string{"1.0-3", "1.0-3+b1", "1.0-3+b2"}, 3},
		{"only a rebuild left after retention", false, "1.0-3", []string{"1.0-3+b4"}, 5},
		{"a longer version is not a rebuild", false, "1.0-3", []string{"1.0-3+build1", "1.0-3+git2.abcdef0"}, 0},
		{"snapshot rebuilt", false, "1.0-3+git2.abcdef0", []string{"1.0-3+git2.abcdef0", "1.0-3"}, 1},
		{"epoch", false, "2:1.0-3", []string{"1.0-3", "2:1.0-3"}, 1},
		{"rpm with the chroot's dist", true, "1.0-3", []string{"1.0-3.el9"}, 1},
		{"rpm rebuilt before", true, "1.0-3", []string{"1.0-3.el9", "1.0-3.el9.b1", "1.0-3.el9.b2"}, 3},
		{"rpm same release on the host", true, "1.0-3", []string{"1.0-3"}, 1},
		{"rpm other release", true, "1.0-3", []string{"1.0-30.el9", "1.0-4.el9"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := rebuildNumber(tt.rpm, tt.base, tt.published); got != tt.want {
				t.Errorf("rebuildNumber(%s, %v) = %d, want %d", tt.base, tt.published, got, tt.want)
			}
		})
	}
}

// The versions the farm makes sort the way the promise says, by dpkg's and
// rpm's own comparison: each build above the one before, every one below
// the packager's next version.
func TestVersionsUpgrade(t *testing.T) {
	kilntest.NeedTool(t, "dpkg", "rpm")
	deb := []string{
		"1.0-3",
		"1.0-3+b1",
		"1.0-3+b2",
		snapshotVersion("1.0-3", "unstable", 1, "abcdef0123"),
		snapshotVersion("1.0-3", "unstable", 1, "abcdef0123") + "+b1",
		snapshotVersion("1.0-3", "unstable", 2, "0123456789"),
		snapshotVersion("1.0-3", "unstable", 10, "fedcba9876"),
		snapshotVersion("1.0-4", "UNRELEASED", 0, "1111111111"),
		snapshotVersion("1.0-4", "UNRELEASED", 3, "2222222222"),
		"1.0-4",
	}
	for i := 1; i < len(deb); i++ {
		if err := exec.Command("dpkg", "--compare-versions", deb[i-1], "lt", deb[i]).Run(); err != nil {
			t.Errorf("dpkg: %s is not below %s", deb[i-1], deb[i])
		}
	}
	rpm := []string{"1.0-3.el9", "1.0-3.el9.b1", "1.0-3.el9.b2", "1.0-3.el9.b10", "1.0-4.el9"}
	for i := 1; i < len(rpm); i++ {
		out, err := exec.Command("rpm", "--eval", `%{lua: print(rpm.vercmp("`+rpm[i-1]+`", "`+rpm[i]+`"))}`).Output()
		if err != nil || strings.TrimSpace(string(out)) != "-1" {
			t.Errorf("rpm: %s is not below %s (%q, %v)", rpm[i-1], rpm[i], out, err)
		}
	}
	if v := snapshotVersion("1.0-3", "unstable", 0, "abc"); v != "" {
		t.Errorf("the released changelog entry itself got snapshot version %q", v)
	}
}

func TestCommitsAfter(t *testing.T) {
	r := kilntest.GitRepo(t)
	r.WriteFiles(map[string]string{"debian/changelog": "one\n", "a": "1"})
	r.Commit("", "first")
	if n, _, err := commitsAfter(r.Dir, "debian/changelog"); err != nil || n != 0 {
		t.Errorf("at the commit adding the changelog: %d, %v; want 0", n, err)
	}
	r.Write("a", "2")
	r.Commit("", "second")
	r.Write("a", "3")
	head := r.Commit("", "third")
	n, hash, err := commitsAfter(r.Dir, "debian/changelog")
	if err != nil || n != 2 || hash != head {
		t.Errorf("two commits later: %d %s, %v; want 2 %s", n, hash, err, head)
	}
	r.Write("debian/changelog", "two\none\n")
	r.Commit("", "new entry")
	if n, _, err := commitsAfter(r.Dir, "debian/changelog"); err != nil || n != 0 {
		t.Errorf("at a new entry: %d, %v; want 0", n, err)
	}
	if n, hash, err := commitsAfter(t.TempDir(), "debian/changelog"); err != nil || n != 0 || hash != "" {
		t.Errorf("outside git: %d %q, %v", n, hash, err)
	}
}

// A tree committed after its changelog's last entry builds as a snapshot
// whose changelog entry dpkg reads, and the source package carries it.
func TestSourceSnapshot(t *testing.T) {
	kilntest.NeedTool(t, "dpkg-source", "dpkg-parsechangelog")
	tests := []struct {
		name  string
		exact bool
		later int // commits after the changelog's
		want  string
	}{
		{"released entry", false, 0, "1.0-1"},
		{"two commits later", false, 2, "1.0-1+git2."},
		{"exact versions", true, 2, "1.0-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, log := fixtureEnv(t, "libgreet", "apt", "debian/bookworm/amd64")
			env.Job.ExactVersions = tt.exact
			r := kilntest.GitRepo(t, kilntest.GitAt(env.Workspace))
			head := r.Commit("", "import")
			for i := range tt.later {
				r.Write("greet.h", strings.Repeat("/* change */\n", i+1)+"const char *greet(const char *name);\n")
				head = r.Commit("", "change")
			}
			o, err := runStep(t, Source{}, env, nil)
			if err != nil {
				t.Fatalf("source: %v (%s)\n%s", err, o.Summary, log)
			}
			got, _ := env.Props.Get("source_version")
			if !strings.HasPrefix(got, tt.want) || (tt.later > 0 && !tt.exact && got != tt.want+head[:7]) {
				t.Fatalf("source_version %q, want %s (head %s)", got, tt.want, head[:7])
			}
			dsc, _ := env.Props.Get("dsc")
			p, err := pkgmeta.ReadFile(filepath.Join(env.Workspace, dsc), filepath.Base(dsc))
			if err != nil || p.Version != got {
				t.Fatalf("%s: %v, %v; want Version %q", dsc, p, err, got)
			}
			if !strings.Contains(o.Summary, got) {
				t.Errorf("summary %q does not name %s", o.Summary, got)
			}
		})
	}
}

// A rebuild of a published version is a binNMU: +bN binaries with the
// source version unchanged, as dpkg expects it; a source that makes only
// Architecture: all packages has nothing to rebuild, and the upload step
// then uploads nothing without failing.
func TestDpkgRebuild(t *testing.T) {
	kilntest.NeedTool(t, "dpkg-buildpackage", "dh", "gcc", "dpkg-deb")
	env, log := fixtureEnv(t, "libgreet", "apt", "debian/bookworm/amd64")
	env.Job.Published = []string{"1.0-1", "1.0-1+b1"}
	o, err := runStep(t, Dpkg{}, env, nil)
	if err != nil {
		t.Fatalf("dpkg: %v (%s)\n%s", err, o.Summary, log)
	}
	deb := filepath.Join(env.Workspace, "dist", "libgreet1_1.0-1+b2_amd64.deb")
	out, err := exec.Command("dpkg-deb", "-f", deb, "Version", "Source").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Version: 1.0-1+b2") || !strings.Contains(string(out), "Source: libgreet (1.0-1)") {
		t.Fatalf("%s: %s %v\n%s", filepath.Base(deb), out, err, log)
	}
	if v, _ := env.Props.Get("binary_version"); v != "1.0-1+b2" {
		t.Errorf("binary_version %q", v)
	}
	if n, _ := env.Props.Get("rebuild"); n != "2" || !strings.Contains(o.Summary, "rebuild +b2") {
		t.Errorf("rebuild property %q, summary %q", n, o.Summary)
	}

	env, log = fixtureEnv(t, "hello", "apt", "debian/bookworm/amd64")
	env.Job.Published = []string{"1.0-3"}
	if o, err = runStep(t, Dpkg{}, env, nil); err != nil || !strings.Contains(o.Summary, "nothing to rebuild") {
		t.Fatalf("Architecture: all rebuild: %v (%s)\n%s", err, o.Summary, log)
	}
	if debs, _ := filepath.Glob(filepath.Join(env.Workspace, "dist", "*.deb")); len(debs) != 0 {
		t.Errorf("built %v", debs)
	}
	up, err := Upload{}.Run(t.Context(), env, protocol.Step{})
	if err != nil || len(up.Artifacts) != 0 || !strings.Contains(up.Summary, "nothing uploaded") {
		t.Errorf("upload after nothing to rebuild: %v, %+v", err, up)
	}
}

func TestRPMBuildRebuild(t *testing.T) {
	kilntest.NeedTool(t, "rpmbuild", "rpmspec", "rpm", "gcc")
	env, log := fixtureEnv(t, "libgreet", "yum", "centos/9/x86_64")
	env.Job.Published = []string{"1.0-1"}
	o, err := runStep(t, RPMBuild{}, env, nil)
	if err != nil {
		t.Fatalf("rpmbuild: %v (%s)\n%s", err, o.Summary, log)
	}
	rpmFile := filepath.Join(env.Workspace, "dist", "libgreet-1.0-1.b1.x86_64.rpm")
	out, err := exec.Command("rpm", "-qp", "--nosignature", "--qf", "%{RELEASE}", rpmFile).CombinedOutput()
	if err != nil || string(out) != "1.b1" {
		t.Fatalf("release %q, %v\n%s", out, err, log)
	}
	if v, _ := env.Props.Get("binary_version"); v != "1.0-1.b1" {
		t.Errorf("binary_version %q", v)
	}
}

func TestNFPMRebuild(t *testing.T) {
	kilntest.NeedTool(t, "dpkg-deb")
	tests := []struct {
		name, release string
		exact         bool
		want          string
	}{
		{"no revision", "", false, "1.2.3+b2"},
		{"revision", "4", false, "1.2.3-4+b2"},
		{"exact versions", "", true, "1.2.3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, log := newTestEnv(t, protocol.Job{Format: "apt", Target: "debian/bookworm/amd64",
				Published: []string{"1.2.3", "1.2.3+b1", "1.2.3-4", "1.2.3-4+b1"}, ExactVersions: tt.exact})
			env.Props.Set("version", "1.2.3")
			cfg := testNFPM
			if tt.release != "" {
				cfg = strings.Replace(cfg, "version: ${prop.version}", "version: ${prop.version}\nrelease: \""+tt.release+"\"", 1)
			}
			writeFile(t, filepath.Join(env.Workspace, "pkg/nfpm.yaml"), cfg)
			writeFile(t, filepath.Join(env.Workspace, "pkg/share/hello.txt"), "hello\n")
			o, err := runStep(t, NFPM{}, env, map[string]string{"config": "pkg/nfpm.yaml"})
			if err != nil {
				t.Fatalf("nfpm: %v (%s)\n%s", err, o.Summary, log)
			}
			pkg, _ := env.Props.Get("package")
			out, err := exec.Command("dpkg-deb", "-f", filepath.Join(env.Workspace, pkg), "Version").Output()
			if err != nil || strings.TrimSpace(string(out)) != tt.want {
				t.Errorf("Version %q, %v; want %s", out, err, tt.want)
			}
			if v, _ := env.Props.Get("binary_version"); v != tt.want {
				t.Errorf("binary_version %q, want %s", v, tt.want)
			}
		})
	}
}

func TestPrependChangelogReadByDpkg(t *testing.T) {
	kilntest.NeedTool(t, "dpkg-parsechangelog")
	path := filepath.Join(t.TempDir(), "changelog")
	orig, err := os.ReadFile("testdata/hello/debian/changelog")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, string(orig))
	e := changelogEntry{Source: "hello", Version: "1.0-3+b1", Distribution: "bookworm", BinaryOnly: true,
		Changes: []string{"Rebuild."}, Maintainer: "A B <a@b.example>", Date: sourceTime(NewProperties(protocol.Job{}, "w"))}
	if err := prependChangelog(path, e); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("dpkg-parsechangelog", "-l", path).CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, want := range []string{"Version: 1.0-3+b1", "Distribution: bookworm", "Binary-Only: yes", "Maintainer: A B <a@b.example>"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("dpkg-parsechangelog lacks %q:\n%s", want, out)
		}
	}
}
