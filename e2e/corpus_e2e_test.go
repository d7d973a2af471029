//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/builders"
	"github.com/kiln-build/kiln/internal/pkgclient"
	"github.com/kiln-build/kiln/protocol"
	"github.com/kiln-build/kiln/repo"
	"github.com/kiln-build/kiln/repo/pkgmeta"
	"github.com/kiln-build/kiln/steps"
)

// corpusPackage is a real bookworm source package, kept in git the way
// its shape says, and what shows its binaries work once apt installed
// them from the farm.
type corpusPackage struct {
	source string
	// shape: "unapplied" (gbp import-dsc's tree: patches not applied),
	// "applied" (dpkg-source -x's: patches applied, .pc/ kept), "native",
	// "pristine-tar" (upstream branch, pristine-tar branch, packaging on
	// main), "tag" (upstream branch tagged upstream/VERSION), "url" (the
	// orig named by URL and checksum in the source step's with:).
	shape   string
	depends []string
	check   string // shell run after installing, must succeed
}

// corpus is the acceptance corpus of issue 12: a library and a program
// built against its -dev through the dev channel (libonig → jq, libmd →
// libbsd), quilt with real patches and revisions above 1, native,
// Architecture: all, several binaries per source, and the three ways of
// keeping an orig.
var corpus = []corpusPackage{
	{source: "libonig", shape: "unapplied", check: "test -e /usr/lib/x86_64-linux-gnu/libonig.so.5"},
	{source: "jq", shape: "applied", depends: []string{"libonig"}, check: "echo '{\"a\":[1,2]}' | jq -c '.a|add' | grep -x 3"},
	{source: "dh-autoreconf", shape: "native", check: "test -x /usr/bin/dh_autoreconf"},
	{source: "hello", shape: "pristine-tar", check: "hello | grep -x 'Hello, world!'"},
	{source: "tree", shape: "tag", check: "tree --version"},
	{source: "libmd", shape: "url", check: "test -e /usr/lib/x86_64-linux-gnu/libmd.so.0"},
	{source: "libbsd", shape: "unapplied", depends: []string{"libmd"}, check: "test -e /usr/lib/x86_64-linux-gnu/libbsd.so.0"},
	{source: "pv", shape: "unapplied", check: "echo corpus | pv -q | grep -x corpus"},
}

// component is the corpus package's component: named apart from the
// test fixtures (steps/testdata has its own hello).
func (p corpusPackage) component() string { return "bookworm-" + p.source }

// corpusConfig lists the corpus as components of one target.
func corpusConfig(kind string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "targets:\n  - {distro: debian, versions: [bookworm], arches: [amd64], kind: %s}\ncomponents:\n", kind)
	for _, p := range corpus {
		var deps []string
		for _, d := range p.depends {
			deps = append(deps, corpusPackage{source: d}.component())
		}
		fmt.Fprintf(&b, "  - {name: %s, git: https://git.invalid/%s, depends: [%s]}\n", p.component(), p.source, strings.Join(deps, ", "))
	}
	b.WriteString("workers:\n  - {name: e2e, credentials: env:KILN_E2E_UNUSED}\nrepos:\n  channels:\n    - {name: dev, key: e2e}\n")
	return b.String()
}

// fetchCorpus downloads the corpus's sources from Debian's archive with
// apt-get source, through a deb-src list of its own, once per cache.
func fetchCorpus(t *testing.T, mirror string) string {
	t.Helper()
	dir := filepath.Join(cacheDir(), "corpus")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var missing []string
	for _, p := range corpus {
		if m, _ := filepath.Glob(filepath.Join(dir, p.source+"_*.dsc")); len(m) == 0 {
			missing = append(missing, p.source)
		}
	}
	if len(missing) == 0 {
		return dir
	}
	apt := pkgclient.NewApt(t, "Types: deb-src\nURIs: "+mirror+"\nSuites: bookworm\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n")
	if out, err := apt.Run("update"); err != nil {
		t.Fatalf("apt-get update for the corpus: %v\n%s", err, out)
	}
	for _, src := range missing {
		out, err := apt.Run("source", "--download-only", src)
		if err != nil {
			t.Fatalf("apt-get source %s: %v\n%s", src, err, out)
		}
	}
	files, _ := filepath.Glob(filepath.Join(apt.Dir, "dl", "*"))
	for _, f := range files {
		if err := os.Rename(f, filepath.Join(dir, filepath.Base(f))); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// importSource lays out a source package in ws as git history of its
// shape, and sets what the build needs for it (the job's properties, the
// source step's with:).
func importSource(t *testing.T, dir, mirror string, p corpusPackage, b *builders.Builder) func(ws string, job *protocol.Job) {
	dscs, _ := filepath.Glob(filepath.Join(dir, p.source+"_*.dsc"))
	if len(dscs) != 1 {
		t.Fatalf("%s: .dsc files %v", p.source, dscs)
	}
	dsc, err := pkgmeta.ReadFile(dscs[0], filepath.Base(dscs[0]))
	if err != nil {
		t.Fatal(err)
	}
	var orig *pkgmeta.SourceFile
	for i, f := range dsc.Files {
		if strings.Contains(f.Name, ".orig.tar.") && !strings.HasSuffix(f.Name, ".asc") {
			orig = &dsc.Files[i]
		}
	}
	if p.shape == "url" {
		prefix := p.source[:1]
		if strings.HasPrefix(p.source, "lib") {
			prefix = p.source[:4]
		}
		url := fmt.Sprintf("%s/pool/main/%s/%s/%s", strings.TrimSuffix(mirror, "/"), prefix, p.source, orig.Name)
		for i := range b.Steps {
			if b.Steps[i].Type == "source" {
				b.Steps[i].With = map[string]string{"orig_url": url, "orig_sha256": orig.SHA256, "orig_asc_url": url + ".asc"}
			}
		}
	}
	return func(ws string, job *protocol.Job) {
		run := func(dir string, name string, args ...string) {
			t.Helper()
			cmd := exec.Command(name, args...)
			cmd.Dir = dir
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
			}
		}
		scratch := t.TempDir()
		tree := filepath.Join(scratch, "tree")
		extract := []string{"-x"}
		if p.shape != "applied" {
			extract = append(extract, "--skip-patches")
		}
		run(scratch, "dpkg-source", append(extract, dscs[0], tree)...)
		// The git command, not go-git: jq's tree has a .gitmodules naming
		// a directory that is no repository, which go-git's add refuses.
		git := func(args ...string) {
			run(ws, "git", append([]string{"-c", "user.name=Kiln Corpus", "-c", "user.email=corpus@kiln.invalid"}, args...)...)
		}
		commit := func(msg string) { git("add", "-A"); git("commit", "-q", "--allow-empty", "-m", msg) }
		git("init", "-q", "-b", "main")
		switch p.shape {
		case "pristine-tar", "tag":
			git("checkout", "-q", "-b", "upstream")
			upstream := filepath.Join(scratch, "upstream")
			run(scratch, "mkdir", upstream)
			run(scratch, "tar", "-xf", filepath.Join(dir, orig.Name), "-C", upstream, "--strip-components=1")
			run(scratch, "cp", "-a", upstream+"/.", ws)
			commit("Import upstream " + p.source)
			version := strings.TrimSuffix(strings.TrimPrefix(orig.Name, p.source+"_"), ".orig.tar.gz")
			if p.shape == "tag" {
				git("tag", "-a", "-m", "upstream "+version, "upstream/"+version)
			} else {
				args := []string{"commit"}
				if _, err := os.Stat(filepath.Join(dir, orig.Name+".asc")); err == nil {
					args = append(args, "--signature-file", filepath.Join(dir, orig.Name+".asc"))
				}
				run(ws, "pristine-tar", append(args, filepath.Join(dir, orig.Name), "upstream")...)
			}
			git("checkout", "-q", "-b", "main-packaging")
			run(scratch, "cp", "-a", filepath.Join(tree, "debian"), ws)
			commit("Import packaging of " + dsc.Version)
		default:
			run(scratch, "cp", "-a", tree+"/.", ws)
			commit("Import " + p.source + " " + dsc.Version)
		}
		// A commit after the changelog's: the farm's version (+git1.HASH)
		// then sorts above the archive's, so apt takes the farm's build,
		// and what depends on a library builds against the farm's.
		{
			if err := os.WriteFile(filepath.Join(ws, "debian", "README.kiln"), []byte("A change after the last changelog entry.\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			commit("Work after " + dsc.Version)
		}
		job.Properties = map[string]string{"commit_time": "1765000000"}
	}
}

// The corpus, built with each Debian builder's default steps into its own
// dev channel in dependency order, then installed from it by apt in a
// clean chroot, where every program runs; apt-get source fetches from the
// farm, and the debug packages are not in main.
func TestCorpus(t *testing.T) {
	for _, kind := range []string{"pbuilder", "sbuild"} {
		t.Run(kind, func(t *testing.T) {
			needTools(t, kind, "dpkg-source", "lintian", "pristine-tar", "pbuilder")
			target := repo.Target{Distro: "debian", Version: "bookworm", Arch: "amd64", Format: pkgmeta.Deb, Key: "e2e"}
			mirror := debianMirror(t, target.Version)
			dir := fetchCorpus(t, mirror)
			path := filepath.Join(t.TempDir(), "kiln.yaml")
			if err := os.WriteFile(path, []byte(corpusConfig(kind)), 0o644); err != nil {
				t.Fatal(err)
			}
			_, m, err := builders.LoadMatrix(path)
			if err != nil {
				t.Fatal(err)
			}
			f := newFarm(t, target)
			for _, b := range m.Builders {
				setChrootOptions(b, map[string]string{"mirror": mirror})
				i := slices.IndexFunc(corpus, func(p corpusPackage) bool { return p.component() == b.Component.Name })
				files := build(t, b, f, importSource(t, dir, mirror, corpus[i], b))
				if corpus[i].source == "jq" {
					checkBuiltAgainstFarm(t, files, "libonig-dev", "6.9.8-1+git1.")
				}
				f.publish(t, files)
			}
			verifyCorpusInstall(t, f, &farmRepo{url: f.repoURL(), codename: target.Version, arch: target.Arch, key: f.pubKey})
		})
	}
}

// checkBuiltAgainstFarm reads a build's .buildinfo for the version of a
// build dependency: the farm's snapshot, not the archive's.
func checkBuiltAgainstFarm(t *testing.T, files []steps.File, dep, version string) {
	t.Helper()
	i := slices.IndexFunc(files, func(f steps.File) bool { return strings.HasSuffix(f.Name, ".buildinfo") })
	if i < 0 {
		t.Fatalf("no .buildinfo among %v", files)
	}
	b, err := os.ReadFile(files[i].Path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), dep+" (= "+version) {
		t.Errorf("%s: built against another %s than the farm's %s…:\n%s", files[i].Name, dep, version, b)
	}
}

// verifyCorpusInstall installs a binary of each source in a clean chroot
// whose apt has the farm and Debian's archive (for what the corpus needs
// from outside it): the farm's snapshots sort above the archive's
// versions, so each must come from the farm.
func verifyCorpusInstall(t *testing.T, f *farm, r *farmRepo) {
	t.Helper()
	install := []string{"libonig5", "jq", "dh-autoreconf", "hello", "tree", "libmd0", "libbsd0", "pv"}
	var checks []string
	for _, p := range corpus {
		checks = append(checks, p.check)
	}
	out, err := r.inChroot(t, fmt.Sprintf(`
apt-get install -y --no-install-recommends %[1]s
echo "== installed"
dpkg-query -W -f='${Package} ${Version}\n' %[1]s
echo "== checks"
%[2]s
echo "== debug"
apt-cache policy libonig5-dbgsym
echo "== source"
cd /tmp && apt-get source --download-only tree && ls /tmp
echo "== done"
`, strings.Join(install, " "), strings.Join(checks, "\n")))
	if err != nil || !strings.Contains(out, "== done") {
		t.Fatalf("installing the corpus from the farm: %v\n%s", err, out)
	}
	_, installed, _ := strings.Cut(out, "== installed")
	installed, rest, _ := strings.Cut(installed, "== checks")
	for _, name := range install {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` \S+\+git1\.[0-9a-f]{7}$`).MatchString(installed) {
			t.Errorf("%s was not installed from the farm (no +git1 snapshot version):\n%s", name, installed)
		}
	}
	_, debug, _ := strings.Cut(rest, "== debug")
	debug, source, _ := strings.Cut(debug, "== source")
	if strings.Contains(debug, r.url) {
		t.Errorf("libonig5-dbgsym is in main:\n%s", debug)
	}
	if !regexp.MustCompile(`tree_2\.1\.0-1\+git1\.[0-9a-f]{7}\.dsc`).MatchString(source) {
		t.Errorf("apt-get source tree did not fetch from the farm:\n%s", source)
	}
	t.Logf("apt installed %v from the farm, and the programs ran", install)
}
