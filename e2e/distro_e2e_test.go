//go:build e2e

// Package e2e holds the acceptance tests that need real distribution tools,
// a reachable Debian mirror and minutes: make e2e (go test -tags e2e ./e2e).
//
// The distribution chain: a farm configuration with two components, the
// library libgreet and the program greeter that build-depends on it, is
// loaded and expanded by builders, so the builds run in its dependency
// order with the step lists its build kind gives. Each build runs the real
// steps against a copy of steps/testdata (in place of the checkout), its
// packages are published into the dev channel by repo.Publisher, signed by
// the real signing agent and served over HTTP, and the next build gets that
// channel as its job's RepoURL and RepoKey, as the master hands them out.
package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kiln-build/kiln/builders"
	"github.com/kiln-build/kiln/internal/kilntest"
	"github.com/kiln-build/kiln/protocol"
	"github.com/kiln-build/kiln/repo"
	"github.com/kiln-build/kiln/repo/pkgmeta"
	"github.com/kiln-build/kiln/signing"
	"github.com/kiln-build/kiln/steps"
)

// cacheDir is the worker cache the tests share between runs, so the
// pbuilder base is created once and reused while fresh.
func cacheDir() string {
	if d := os.Getenv("KILN_E2E_CACHE"); d != "" {
		return d
	}
	return "/var/cache/kiln-e2e"
}

// needTools skips (fails under CI) unless the tools are installed and the
// test runs as root, which pbuilder and rpm --root need.
func needTools(t *testing.T, names ...string) {
	t.Helper()
	kilntest.NeedTool(t, names...)
	kilntest.NeedRoot(t, "the distribution e2e tests run pbuilder and rpm --root")
}

// agentSigner is the repository's view of the real signing agent.
type agentSigner struct{ c signing.Client }

func (s agentSigner) Clearsign(ctx context.Context, key string, data []byte) ([]byte, error) {
	return signing.Clearsign(ctx, s.c, key, "InRelease", data)
}

func (s agentSigner) DetachSign(ctx context.Context, key string, data []byte) ([]byte, error) {
	return signing.DetachSign(ctx, s.c, key, "repository index", data)
}

// farm is the repository side: a dev channel for one target, published by
// repo.Publisher with a key held by the signing agent, served over HTTP.
type farm struct {
	target   repo.Target
	pub      *repo.Publisher
	srv      *httptest.Server
	pubKey   []byte
	packages []*pkgmeta.Package
}

func newFarm(t *testing.T, target repo.Target) *farm {
	t.Helper()
	dir := t.TempDir()
	pass := []byte("e2e passphrase")
	g, err := signing.GenerateKey("Kiln e2e", "e2e@kiln.invalid", signing.KeyRSA4096, pass)
	if err != nil {
		t.Fatal(err)
	}
	secPath, _, err := g.WriteKeyFiles(dir, target.Key)
	if err != nil {
		t.Fatal(err)
	}
	key, err := signing.LoadKey(target.Key, secPath)
	if err != nil {
		t.Fatal(err)
	}
	agent, err := signing.NewAgent([]*signing.Key{key}, signing.Options{Audit: signing.NewAuditLog(&strings.Builder{})})
	if err != nil {
		t.Fatal(err)
	}
	if err := agent.Unlock(target.Key, pass); err != nil {
		t.Fatal(err)
	}
	pubKey, err := agent.PublicKey(target.Key)
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "repos")
	pub, err := repo.Open(root, agentSigner{agent.LocalClient("e2e")}, repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.StripPrefix("/repos", repo.Handler(root)))
	t.Cleanup(srv.Close)
	f := &farm{target: target, pub: pub, srv: srv, pubKey: pubKey}
	// A new channel is published empty, before any build: the first build's
	// chroot must accept it as it is.
	f.publish(t, nil)
	return f
}

// repoURL is the dev channel of the target as clients address it.
func (f *farm) repoURL() string { return f.srv.URL + "/repos/dev/" + f.target.Dir() }

// publish adds the packages among the files to the dev channel; the rest
// (a .changes, a .buildinfo) stay with the build, as on the master.
func (f *farm) publish(t *testing.T, files []steps.File) {
	t.Helper()
	for _, file := range files {
		if ext := filepath.Ext(file.Name); ext != ".deb" && ext != ".rpm" && ext != ".dsc" {
			continue
		}
		p, err := pkgmeta.ReadFile(file.Path, filepath.Base(file.Name))
		if err != nil {
			t.Fatal(err)
		}
		// As the master does: the files a .dsc lists come with the build.
		for i, sf := range p.Files {
			j := slices.IndexFunc(files, func(a steps.File) bool { return filepath.Base(a.Name) == sf.Name })
			if j < 0 {
				t.Fatalf("%s lists %s, which the build did not upload", file.Name, sf.Name)
			}
			p.Files[i].Path = files[j].Path
		}
		f.packages = append(f.packages, p)
	}
	_, err := f.pub.Publish(context.Background(), "dev", repo.ChannelContents{Targets: []repo.TargetContents{{Target: f.target, Packages: f.packages}}})
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
}

// fileLog keeps a build's log in a file; the test prints its tail when
// the build fails (pbuilder logs thousands of lines).
type fileLog struct {
	t    *testing.T
	path string
	w    *bufio.Writer
}

// Line keeps s; what the pbuilder step says about its base tarball goes
// to the test log too, for the figures (create and update times).
func (l *fileLog) Line(s string) {
	l.w.WriteString(s + "\n")
	if strings.HasPrefix(s, "base ") {
		l.t.Log(s)
	}
}

func (l *fileLog) tail(n int) string {
	l.w.Flush()
	b, _ := os.ReadFile(l.path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// chainConfig is the farm configuration of the chain; KIND is the build
// kind under test.
const chainConfig = `
targets:
  - {distro: %s, versions: ["%s"], arches: [%s], kind: %s}
components:
  - {name: libgreet, git: https://git.invalid/libgreet}
  - {name: greeter, git: https://git.invalid/greeter, depends: [libgreet]}
workers:
  - {name: e2e, credentials: env:KILN_E2E_UNUSED}
repos:
  channels:
    - {name: dev, key: e2e}
`

// chainBuilders returns the builders of the chain in dependency order, as
// the master would schedule them.
func chainBuilders(t *testing.T, target repo.Target, kind string) []*builders.Builder {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kiln.yaml")
	cfg := fmt.Sprintf(chainConfig, target.Distro, target.Version, target.Arch, kind)
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := builders.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	m, err := builders.Expand(c)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, b := range m.Builders {
		names = append(names, b.Component.Name)
		if !slices.Contains(b.Tags, kind) {
			t.Errorf("builder %s requires tags %v: lacks the %s tool's tag", b.Name, b.Tags, kind)
		}
	}
	if !slices.Equal(names, []string{"libgreet", "greeter"}) {
		t.Fatalf("builders in order %v, want libgreet before greeter", names)
	}
	return m.Builders
}

// build runs one builder's steps as a worker would, the checkout replaced
// by a copy of the fixture, and returns the uploaded artifacts.
// setChrootOptions gives b's pbuilder or sbuild step its options: the tests point
// it at this machine's reachable mirror, which the config cannot know.
func setChrootOptions(b *builders.Builder, with map[string]string) {
	for i := range b.Steps {
		if t := b.Steps[i].Type; t == "pbuilder" || t == "sbuild" {
			b.Steps[i].With = with
		}
	}
}

func build(t *testing.T, b *builders.Builder, f *farm, prepare ...func(ws string, job *protocol.Job)) []steps.File {
	t.Helper()
	artifacts, step, o, err := tryBuild(t, b, f, prepare...)
	if err != nil {
		t.Fatalf("%s step %s: %v (%s)", b.Name, step, err, o.Summary)
	}
	if len(artifacts) == 0 {
		t.Fatalf("%s uploaded nothing", b.Name)
	}
	return artifacts
}

// tryBuild runs the steps until one fails and returns what was uploaded,
// or the failed step's name, outcome and error. prepare, when given, sees
// the workspace and the job before the steps run.
func tryBuild(t *testing.T, b *builders.Builder, f *farm, prepare ...func(ws string, job *protocol.Job)) ([]steps.File, string, steps.Outcome, error) {
	t.Helper()
	ws := t.TempDir()
	// A component without a fixture is laid out by prepare.
	fixture := filepath.Join("..", "steps", "testdata", b.Component.Name)
	if _, err := os.Stat(fixture); err == nil {
		if out, err := exec.Command("cp", "-a", fixture+"/.", ws).CombinedOutput(); err != nil {
			t.Fatalf("copy fixture: %v\n%s", err, out)
		}
	}
	job := protocol.Job{V: protocol.Version, Build: b.Component.Name + "-e2e", Attempt: 1, Builder: b.Name, Component: b.Component.Name,
		Target: b.Target.String(), Format: b.Format, RepoURL: f.repoURL(), RepoKey: string(f.pubKey)}
	for _, p := range prepare {
		p(ws, &job)
	}
	logFile, err := os.Create(filepath.Join(t.TempDir(), "build.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	log := &fileLog{t: t, path: logFile.Name(), w: bufio.NewWriter(logFile)}
	env := &steps.Env{Workspace: ws, CacheDir: cacheDir(), Job: job, Log: log, Props: steps.NewProperties(job, "e2e")}
	var artifacts []steps.File
	for _, s := range b.Steps {
		if s.Type == "checkout" {
			continue
		}
		start := time.Now()
		o, err := steps.Run(context.Background(), env, protocol.Step{Name: s.Name, Type: s.Type, With: s.With, Artifacts: s.Artifacts, Timeout: 30 * time.Minute})
		t.Logf("%s %s: %s (%s)", b.Name, s.Name, o.Summary, time.Since(start).Round(100*time.Millisecond))
		if err != nil {
			t.Logf("last lines of the log:\n%s", log.tail(40))
			return nil, s.Name, o, err
		}
		artifacts = append(artifacts, o.Artifacts...)
	}
	return artifacts, "", steps.Outcome{}, nil
}

// debianMirror is the first Debian mirror this machine's apt uses for
// codename (deb822 .sources or one-line .list), which is known reachable.
func debianMirror(t *testing.T, codename string) string {
	t.Helper()
	files, _ := filepath.Glob("/etc/apt/sources.list.d/*.sources")
	for _, p := range files {
		b, _ := os.ReadFile(p)
		for stanza := range strings.SplitSeq(string(b), "\n\n") {
			var uris, suites string
			for l := range strings.SplitSeq(stanza, "\n") {
				if v, ok := strings.CutPrefix(l, "URIs:"); ok {
					uris = strings.TrimSpace(v)
				}
				if v, ok := strings.CutPrefix(l, "Suites:"); ok {
					suites = v
				}
			}
			if uris != "" && slices.Contains(strings.Fields(suites), codename) && strings.Contains(uris, "debian") && !strings.Contains(uris, "security") {
				return strings.Fields(uris)[0]
			}
		}
	}
	lists, _ := filepath.Glob("/etc/apt/sources.list.d/*.list")
	for _, p := range append([]string{"/etc/apt/sources.list"}, lists...) {
		b, _ := os.ReadFile(p)
		for l := range strings.SplitSeq(string(b), "\n") {
			fields := strings.Fields(l)
			if len(fields) >= 3 && fields[0] == "deb" && !strings.HasPrefix(fields[1], "[") && fields[2] == codename {
				return fields[1]
			}
		}
	}
	t.Fatalf("no Debian mirror for %s in this machine's apt sources", codename)
	return ""
}

// buildDebianChain builds the chain for debian/bookworm/amd64 with kind,
// each build publishing into the dev channel before the next starts, and
// returns the farm, the builders and the channel as clients see it.
func buildDebianChain(t *testing.T, kind string) (*farm, []*builders.Builder, *farmRepo) {
	t.Helper()
	target := repo.Target{Distro: "debian", Version: "bookworm", Arch: "amd64", Format: pkgmeta.Deb, Key: "e2e"}
	mirror := debianMirror(t, target.Version)
	f := newFarm(t, target)
	chain := chainBuilders(t, target, kind)
	for _, b := range chain {
		setChrootOptions(b, map[string]string{"mirror": mirror})
	}
	start := time.Now()
	for _, b := range chain {
		f.publish(t, build(t, b, f))
	}
	t.Logf("chain built with %s and published in %s", kind, time.Since(start).Round(time.Second))
	return f, chain, &farmRepo{url: f.repoURL(), codename: target.Version, arch: target.Arch, key: f.pubKey}
}

func TestPbuilderChain(t *testing.T) {
	needTools(t, "pbuilder", "debootstrap", "dpkg-source", "lintian")
	f, chain, r := buildDebianChain(t, "pbuilder")
	verifyAptInstall(t, r)

	// A rebuild of the library with no source change, and a commit to the
	// program after its last changelog entry: each must reach a client
	// that installed the first builds, as an upgrade.
	rebuilt := build(t, chain[0], f, func(_ string, job *protocol.Job) { job.Published = f.versions(chain[0].Component.Name) })
	f.publish(t, rebuilt)
	var head string
	snapshot := build(t, chain[1], f, func(ws string, job *protocol.Job) {
		job.Properties = map[string]string{"commit_time": strconv.FormatInt(time.Now().Unix(), 10)}
		g := kilntest.GitRepo(t, kilntest.GitAt(ws))
		g.Commit("", "import greeter 1.0")
		g.Write("README", "a change after the changelog entry\n")
		head = g.Commit("", "docs")
	})
	f.publish(t, snapshot)
	verifyAptUpgrade(t, r, map[string]string{
		"libgreet1": "1.0-1+b1",
		"greeter":   "1.0+git1." + head[:7],
	})
}

// versions lists the versions of the packages built from a source that
// the channel has, as the master's Job.Published does for a builder.
func (f *farm) versions(source string) []string {
	var out []string
	for _, p := range f.packages {
		if p.Source == source || p.Name == source {
			out = append(out, p.FullVersion())
		}
	}
	return out
}

// verifyAptUpgrade installs the first version of each package in a clean
// chroot, then asks apt for upgrades: it must offer, and install, want.
func verifyAptUpgrade(t *testing.T, r *farmRepo, want map[string]string) {
	t.Helper()
	out, err := r.inChroot(t, `
apt-get install -y --no-install-recommends greeter=1.0 libgreet1=1.0-1
echo "== upgrade"
apt-get -s upgrade
apt-get upgrade -y
echo "== installed"
dpkg-query -W -f='${Package} ${Version}\n' greeter libgreet1
greeter upgraded
echo "== debug"
apt-cache policy greeter-dbgsym
sed -i 's/^Components: main$/Components: main debug/' /etc/apt/sources.list.d/kiln.sources
apt-get update
apt-cache policy greeter-dbgsym
echo "== source"
cd /tmp && apt-get source --download-only greeter libgreet
ls /tmp
`)
	if err != nil || !strings.Contains(out, "Hello, upgraded!") {
		t.Fatalf("upgrading from the farm's repository: %v\n%s", err, out)
	}
	_, installed, _ := strings.Cut(out, "== installed")
	installed, debug, _ := strings.Cut(installed, "== debug")
	debug, sources, _ := strings.Cut(debug, "== source")
	for name, v := range want {
		if !strings.Contains(out, "Inst "+name+" [") || !strings.Contains(installed, name+" "+v+"\n") {
			t.Errorf("apt did not upgrade %s to %s:\n%s", name, v, out)
		}
	}
	t.Logf("apt upgraded %v from the dev channel", want)
	// Without the debug component apt knows no greeter-dbgsym; with it, it
	// does.
	withoutDebug, withDebug, _ := strings.Cut(debug, "Reading package lists")
	if strings.Contains(withoutDebug, "Candidate: 1.0") || !strings.Contains(withDebug, "Candidate: "+want["greeter"]) {
		t.Errorf("greeter-dbgsym should be only in the debug component:\n%s", debug)
	}
	for _, dsc := range []string{"greeter_" + want["greeter"] + ".dsc", "libgreet_1.0-1.dsc", "libgreet_1.0.orig.tar.gz"} {
		if !strings.Contains(sources, dsc) {
			t.Errorf("apt-get source did not fetch %s:\n%s", dsc, sources)
		}
	}
}

// The chain built by sbuild in unshare mode, as the unprivileged
// kiln-sbuild user (scripts/sbuild-user.sh), through the dev channel; then
// a binNMU of the library. apt installs what it built.
func TestSbuildChain(t *testing.T) {
	needTools(t, "sbuild", "mmdebstrap", "newuidmap", "dpkg-source", "lintian", "pbuilder")
	f, chain, r := buildDebianChain(t, "sbuild")
	rebuilt := build(t, chain[0], f, func(_ string, job *protocol.Job) { job.Published = f.versions(chain[0].Component.Name) })
	if !slices.ContainsFunc(rebuilt, func(a steps.File) bool { return strings.HasSuffix(a.Name, "libgreet1_1.0-1+b1_amd64.deb") }) {
		t.Fatalf("sbuild's binNMU uploaded %v, want libgreet1_1.0-1+b1_amd64.deb", rebuilt)
	}
	f.publish(t, rebuilt)
	verifyAptInstall(t, r)
}

// farmRepo is an apt repository of the farm as a client sees it.
type farmRepo struct {
	url, codename, arch string
	key                 []byte
}

// inChroot runs a shell script in a clean chroot of the pbuilder base
// whose apt has the farm's repository (deb and deb-src, component main,
// signed by its key) and has run apt-get update; it returns the output.
func (r *farmRepo) inChroot(t *testing.T, body string) (string, error) {
	t.Helper()
	script := filepath.Join(t.TempDir(), "script")
	content := fmt.Sprintf(`#!/bin/sh
set -e
mkdir -p /etc/apt/keyrings
cat > /etc/apt/keyrings/kiln.asc <<'EOF_KEY'
%s
EOF_KEY
cat > /etc/apt/sources.list.d/kiln.sources <<'EOF_SOURCES'
Types: deb deb-src
URIs: %s
Suites: %s
Components: main
Signed-By: /etc/apt/keyrings/kiln.asc
EOF_SOURCES
apt-get update
%s`, strings.TrimSpace(string(r.key)), r.url, r.codename, body)
	if err := os.WriteFile(script, []byte(content), 0o755); err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(cacheDir(), "pbuilder", "debian-"+r.codename+"-"+r.arch, "base.tgz")
	out, err := exec.Command("pbuilder", "execute", "--basetgz", base, "--", script).CombinedOutput()
	return string(out), err
}

// verifyAptInstall installs greeter from the farm's dev channel in a clean
// chroot of the pbuilder base, with the channel's signature checked, and
// runs it.
func verifyAptInstall(t *testing.T, r *farmRepo) {
	t.Helper()
	out, err := r.inChroot(t, `
apt-get install -y --no-install-recommends greeter
dpkg-query -W greeter libgreet1
greeter e2e
`)
	if err != nil || !strings.Contains(out, "Hello, e2e!") {
		t.Fatalf("installing greeter from the farm's repository: %v\n%s", err, out)
	}
	t.Logf("apt in a clean bookworm chroot installed greeter from the dev channel and it said %q", "Hello, e2e!")
}

// A base older than max_age is updated (pbuilder update on a copy, renamed
// over it) before the build uses it.
func TestPbuilderBaseUpdate(t *testing.T) {
	needTools(t, "pbuilder", "debootstrap", "dpkg-source")
	target := repo.Target{Distro: "debian", Version: "bookworm", Arch: "amd64", Format: pkgmeta.Deb, Key: "e2e"}
	mirror := debianMirror(t, target.Version)
	f := newFarm(t, target)
	libgreet := chainBuilders(t, target, "pbuilder")[0]
	setChrootOptions(libgreet, map[string]string{"mirror": mirror, "max_age": "1s"})
	base := filepath.Join(cacheDir(), "pbuilder", "debian-bookworm-amd64", "base.tgz")
	before, err := os.Stat(base)
	if err != nil {
		build(t, libgreet, f) // creates it
		if before, err = os.Stat(base); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(time.Second)
	build(t, libgreet, f)
	after, err := os.Stat(base)
	if err != nil {
		t.Fatal(err)
	}
	if !after.ModTime().After(before.ModTime()) || os.SameFile(before, after) {
		t.Errorf("base not replaced by an updated one: %s then %s", before.ModTime(), after.ModTime())
	}
	if _, err := os.Stat(base + ".new"); !os.IsNotExist(err) {
		t.Errorf("%s.new left behind: %v", base, err)
	}
}

// Without its dependency in the dev channel the program cannot build: the
// step fails with the unmet dependency in its summary, and nothing is
// uploaded.
func TestUnmetBuildDependency(t *testing.T) {
	for _, kind := range []string{"pbuilder", "sbuild"} {
		t.Run(kind, func(t *testing.T) {
			needTools(t, kind, "dpkg-source")
			target := repo.Target{Distro: "debian", Version: "bookworm", Arch: "amd64", Format: pkgmeta.Deb, Key: "e2e"}
			mirror := debianMirror(t, target.Version)
			f := newFarm(t, target)
			greeter := chainBuilders(t, target, kind)[1]
			setChrootOptions(greeter, map[string]string{"mirror": mirror})
			artifacts, step, o, err := tryBuild(t, greeter, f)
			if !errors.Is(err, steps.ErrBuildDeps) || step != kind || !strings.Contains(o.Summary, "libgreet-dev") {
				t.Fatalf("step %s: %v (summary %q), want the %s step to fail on libgreet-dev", step, err, o.Summary, kind)
			}
			if artifacts != nil {
				t.Errorf("a failed build uploaded %v", artifacts)
			}
		})
	}
}

func TestRPMBuildChain(t *testing.T) {
	needTools(t, "rpmbuild", "rpmspec", "rpm", "dnf", "gcc")
	target := repo.Target{Distro: "centos", Version: "9", Arch: "x86_64", Format: pkgmeta.RPM, Key: "e2e"}
	f := newFarm(t, target)
	start := time.Now()
	for _, b := range chainBuilders(t, target, "rpmbuild") {
		f.publish(t, build(t, b, f))
	}
	t.Logf("chain built and published in %s", time.Since(start).Round(time.Second))
	verifyDNFInstall(t, f)
}

// A spec at Release 3 with a %changelog, built, then rebuilt without a
// change: the rebuild is 1.0-3.b1, dnf offers it as an upgrade of the
// installed 1.0-3, and dnf download --source fetches its source rpm.
func TestRPMRebuildUpgrade(t *testing.T) {
	needTools(t, "rpmbuild", "rpmspec", "rpm", "dnf", "gcc")
	target := repo.Target{Distro: "centos", Version: "9", Arch: "x86_64", Format: pkgmeta.RPM, Key: "e2e"}
	f := newFarm(t, target)
	b := oneComponent(t, target, "rpmbuild", "libgreet")
	release3 := func(ws string, job *protocol.Job) {
		spec := filepath.Join(ws, "libgreet.spec")
		text, err := os.ReadFile(spec)
		if err != nil {
			t.Fatal(err)
		}
		s := strings.Replace(string(text), "Release:        1\n", "Release:        3\n", 1)
		s = strings.Replace(s, "%changelog\n", "%changelog\n* Mon Dec 07 2026 Kiln Tests <test@kiln.invalid> - 1.0-3\n- Third release.\n\n", 1)
		if err := os.WriteFile(spec, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		job.Published = f.versions("libgreet")
	}
	first := build(t, b, f, release3)
	f.publish(t, first)
	f.publish(t, build(t, b, f, release3))
	if !slices.ContainsFunc(f.packages, func(p *pkgmeta.Package) bool { return p.FileName == "libgreet-1.0-3.b1.x86_64.rpm" }) {
		t.Fatalf("the rebuild did not publish libgreet-1.0-3.b1: %v", f.versions("libgreet"))
	}

	dir := t.TempDir()
	conf := f.dnfConfig(t, dir)
	root := filepath.Join(dir, "root")
	var installed []string
	for _, a := range first {
		if strings.HasSuffix(a.Name, ".x86_64.rpm") {
			installed = append(installed, a.Path)
		}
	}
	if out, err := exec.Command("rpm", append([]string{"--root", root, "-i", "--nodeps", "--nosignature"}, installed...)...).CombinedOutput(); err != nil {
		t.Fatalf("rpm -i the first build: %v\n%s", err, out)
	}
	dnf := []string{"-y", "--config", conf, "--releasever", "9", "--installroot", root}
	out, err := exec.Command("dnf", append(dnf, "check-update")...).CombinedOutput()
	if code := exitCode(err); code != 100 || !strings.Contains(string(out), "1.0-3.b1") {
		t.Fatalf("dnf check-update (exit %d) does not offer 1.0-3.b1 over the installed 1.0-3:\n%s", code, out)
	}
	t.Logf("dnf offers the rebuild as an upgrade:\n%s", out)
	dl := filepath.Join(dir, "src")
	if out, err := exec.Command("dnf", append(dnf, "download", "--source", "--destdir", dl, "libgreet")...).CombinedOutput(); err != nil {
		t.Fatalf("dnf download --source: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dl, "libgreet-1.0-3.b1.src.rpm")); err != nil {
		t.Errorf("dnf download --source did not fetch the rebuild's source rpm: %v", err)
	}
}

// dnfConfig writes, in dir, a dnf.conf whose only repository is the dev
// channel, its repomd.xml signature checked, and returns its path.
func (f *farm) dnfConfig(t *testing.T, dir string) string {
	t.Helper()
	key := filepath.Join(dir, "kiln.asc")
	if err := os.WriteFile(key, f.pubKey, 0o644); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "dnf.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, "[main]\nreposdir=%[1]s/none\ncachedir=%[1]s/cache\ngpgcheck=0\n\n[kiln-dev]\nname=kiln dev\nbaseurl=%[2]s\nrepo_gpgcheck=1\ngpgkey=file://%[3]s\n", dir, f.repoURL(), key), 0o644); err != nil {
		t.Fatal(err)
	}
	return conf
}

// exitCode is a command's exit status; 0 when it succeeded.
func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// verifyDNFInstall fetches greeter and what it requires from the dev
// channel with a dnf that knows only that channel (repository signature
// checked), unpacks them into a scratch root and runs greeter there: the
// binary from the repository runs against the library from the repository.
func verifyDNFInstall(t *testing.T, f *farm) {
	t.Helper()
	dir := t.TempDir()
	conf := f.dnfConfig(t, dir)
	dnf := []string{"-q", "-y", "--config", conf, "--releasever", "9", "--installroot", filepath.Join(dir, "dnfroot")}
	run := func(name string, args ...string) string {
		t.Helper()
		out, err := exec.Command(name, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	deps := run("dnf", append(dnf, "repoquery", "--qf", "%{name}", "--requires", "--resolve", "greeter")...)
	if !strings.Contains(deps, "libgreet") {
		t.Fatalf("greeter's requirements resolve to %q in the dev channel, want libgreet", deps)
	}
	dl := filepath.Join(dir, "rpms")
	run("dnf", append(dnf, "download", "--destdir", dl, "greeter", "libgreet")...)
	rpms, _ := filepath.Glob(filepath.Join(dl, "*.rpm"))
	root := filepath.Join(dir, "root")
	run("rpm", append([]string{"--root", root, "--dbpath", "/var/lib/rpm", "-i", "--nodeps", "--nosignature"}, rpms...)...)
	cmd := exec.Command(filepath.Join(root, "usr/bin/greeter"), "e2e")
	cmd.Env = append(os.Environ(), "LD_LIBRARY_PATH="+filepath.Join(root, "usr/lib64"))
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "Hello, e2e!" {
		t.Fatalf("greeter from the repository: %v: %s", err, out)
	}
}

// oneComponent returns the builder of a single component built with kind on
// target, with the default steps of that kind.
func oneComponent(t *testing.T, target repo.Target, kind, component string) *builders.Builder {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kiln.yaml")
	cfg := fmt.Sprintf(`
targets:
  - {distro: %s, versions: ["%s"], arches: [%s], kind: %s}
components:
  - {name: %s, git: https://git.invalid/%s}
workers:
  - {name: e2e, credentials: env:KILN_E2E_UNUSED}
repos:
  channels:
    - {name: dev, key: e2e}
`, target.Distro, target.Version, target.Arch, kind, component, component)
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	_, m, err := builders.LoadMatrix(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Builders) != 1 {
		t.Fatalf("%d builders, want 1", len(m.Builders))
	}
	return m.Builders[0]
}

// A third Debian revision's upload carries no upstream tarball
// (dpkg-genchanges leaves it out when the upstream version did not change),
// and pbuilder copies only what the .changes lists. The default steps must
// still lint the whole source package and publish the binary.
func TestPbuilderRevision3Upload(t *testing.T) {
	needTools(t, "pbuilder", "debootstrap", "dpkg-source", "lintian")
	target := repo.Target{Distro: "debian", Version: "bookworm", Arch: "amd64", Format: pkgmeta.Deb, Key: "e2e"}
	mirror := debianMirror(t, target.Version)
	f := newFarm(t, target)
	b := oneComponent(t, target, "pbuilder", "hello")
	if !slices.ContainsFunc(b.Steps, func(s builders.Step) bool { return s.Type == "lintian" }) {
		t.Fatalf("default pbuilder steps %v have no lintian", b.Steps)
	}
	setChrootOptions(b, map[string]string{"mirror": mirror})
	artifacts := build(t, b, f)
	for _, want := range []string{"hello_1.0-3_all.deb", "hello_1.0-3_amd64.changes", "hello_1.0-3_amd64.buildinfo"} {
		if !slices.ContainsFunc(artifacts, func(a steps.File) bool { return strings.HasSuffix(a.Name, want) }) {
			t.Errorf("uploaded %v, want %s among them", artifacts, want)
		}
	}
	f.publish(t, artifacts)
}
