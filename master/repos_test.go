package master_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kiln-build/kiln/internal/kilntest"
	"github.com/kiln-build/kiln/internal/kilntest/farmtest"
	"github.com/kiln-build/kiln/internal/pkgclient"
	"github.com/kiln-build/kiln/master/api"
	"github.com/kiln-build/kiln/master/api/client"
	"github.com/kiln-build/kiln/protocol"
	"github.com/kiln-build/kiln/signing"
)

// reposYAML: nfpm builds for a Debian and a CentOS target; opencore
// depends on libgrace; badarch claims arm64 on both amd64 targets.
const reposYAML = `
targets:
  - {distro: debian, versions: [bookworm], arches: [amd64], kind: nfpm, format: apt}
  - {distro: centos, versions: ["9"], arches: [x86_64], kind: nfpm, format: yum}
components:
  - {name: libgrace, git: %s}
  - {name: opencore, git: %s, depends: [libgrace]}
  - {name: badarch, git: %s}
workers:
  - {name: w1, credentials: w1.token, slots: 4}
users:
  - {name: ops, token: ops.token}
repos:
  origin: Kiln test
  channels:
    - {name: dev, key: farmkey}
    - {name: stable, key: farmkey, promote_from: dev}
`

// nfpmRepo makes a git repository holding an nfpm package definition and
// returns its path.
func nfpmRepo(t *testing.T, name, arch, depends string) string {
	t.Helper()
	spec := fmt.Sprintf("name: %s\narch: %s\nplatform: linux\nversion: 1.0.${build}\nmaintainer: Kiln tests <test@kiln.invalid>\n"+
		"description: test package %s\nlicense: MIT\ncontents:\n  - {src: ./%s.txt, dst: /usr/share/%s/%s.txt}\n", name, arch, name, name, name, name)
	if depends != "" {
		spec += "depends: [" + depends + "]\n"
	}
	r := kilntest.GitRepo(t)
	r.WriteFiles(map[string]string{"nfpm.yaml": spec, name + ".txt": "hello from " + name + "\n"})
	r.Commit("main", "package "+name)
	return r.Dir
}

// startSigner runs a real signing agent with a fresh Ed25519 key called
// name on the socket the master finds by default (DATA/signer.sock), and
// returns the armored public key.
func startSigner(t *testing.T, dataDir, name string) []byte {
	t.Helper()
	gen, err := signing.GenerateKey("Kiln test farm", "farm@kiln.invalid", signing.KeyEd25519, nil)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), name+".asc")
	if err := os.WriteFile(keyFile, gen.Secret, 0o600); err != nil {
		t.Fatal(err)
	}
	key, err := signing.LoadKey(name, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	agent, err := signing.NewAgent([]*signing.Key{key}, signing.Options{Audit: signing.NewAuditLog(&bytes.Buffer{}), Logger: kilntest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := agent.Unlock(name, nil); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	ln, err := signing.ListenSocket(filepath.Join(dataDir, "signer.sock"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- (&signing.SocketServer{Agent: agent, Logger: kilntest.Logger(t)}).Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("signer: %v", err)
		}
	})
	return gen.Public
}

// TestReposPublishBeforeDependentsAndRealClients is issue 5's acceptance
// through the whole farm: a real worker builds .deb and .rpm packages with
// nfpm, the master publishes them signed into dev before the dependent
// starts, and real apt-get, dnf and rpm accept what it serves.
func TestReposPublishBeforeDependentsAndRealClients(t *testing.T) {
	kilntest.NeedTool(t, "apt-get", "dnf", "rpm", "gpgv")
	cfg := fmt.Sprintf(reposYAML, nfpmRepo(t, "libgrace", "${arch}", ""), nfpmRepo(t, "opencore", "${arch}", "libgrace"),
		nfpmRepo(t, "badarch", "arm64", ""))
	dir := t.TempDir()
	pubKey := startSigner(t, filepath.Join(dir, "data"), "farmkey")
	f := startFarm(t, cfg, farmtest.Dir(dir))

	// Both channels exist, empty and signed, once the master leads, before
	// anything was built.
	for _, path := range []string{"/repos/dev/apt/debian/dists/bookworm/InRelease", "/repos/stable/yum/centos/9/x86_64/repodata/repomd.xml.asc"} {
		kilntest.WaitFor(t, 10*time.Second, path, func() bool { code, _ := f.get(path); return code == http.StatusOK })
	}

	f.runWorker("w1", 4)
	f.waitConnected("w1")
	// libgrace's buildset rebuilds its dependent opencore after it.
	var opencore []int64
	for _, b := range f.waitFinished(2*time.Minute, f.force("libgrace").Builds...) {
		if b.Status != protocol.StatusSuccess {
			t.Fatalf("build %d %s: %s: %s", b.ID, b.Builder, b.Status, b.Summary)
		}
		if b.Component == "opencore" {
			opencore = append(opencore, b.ID)
		}
	}

	published := f.listed()
	if len(published) != 4 {
		t.Fatalf("listed: %v, want libgrace and opencore in dev for 2 targets", published)
	}
	if _, metrics := f.get("/metrics"); !strings.Contains(metrics, "kiln_publish_duration_seconds_count") || strings.Contains(metrics, "kiln_publish_duration_seconds_count 0\n") {
		t.Errorf("/metrics records no publish:\n%.1500s", metrics)
	}
	// The web page shows what the API lists.
	if code, page := f.get("/repos"); code != http.StatusOK || !strings.Contains(page, "opencore") || !strings.Contains(page, published["dev centos/9/x86_64 libgrace"].Version) {
		t.Errorf("repositories page: HTTP %d, without the published packages:\n%.2000s", code, page)
	}

	// Invariant 2, per target: the dependency's package was served before
	// the dependent's build started.
	for _, target := range []string{"debian/bookworm/amd64", "centos/9/x86_64"} {
		dep, ok := published["dev "+target+" libgrace"]
		if !ok {
			t.Fatalf("libgrace not published for %s", target)
		}
		lib := f.build(dep.Build)
		var user *int64
		for _, id := range opencore {
			if b := f.build(id); b.Target == target {
				user = &b.ID
			}
		}
		if user == nil {
			t.Fatalf("no opencore build for %s", target)
		}
		b := f.build(*user)
		t.Logf("%s: libgrace ended %s, published %s (+%s), opencore started %s (+%s)", target, lib.Ended.Format(time.StampMicro),
			dep.Published.Format(time.StampMicro), dep.Published.Sub(lib.Ended), b.Started.Format(time.StampMicro), b.Started.Sub(dep.Published))
		if !b.Started.After(dep.Published) {
			t.Errorf("%s: opencore build %d started %s, before libgrace was published at %s", target, b.ID, b.Started, dep.Published)
		}
	}

	t.Run("apt", func(t *testing.T) {
		sources := f.text("/api/v1/repos/dev/client-config?target=debian/bookworm/amd64")
		if !strings.Contains(sources, "URIs: "+f.URL+"/repos/dev/apt/debian") || !strings.Contains(sources, "Signed-By:") {
			t.Fatalf("client config:\n%s", sources)
		}
		apt := pkgclient.NewApt(t, sources)
		if out, err := apt.Run("update"); err != nil || strings.Contains(out, "W:") || strings.Contains(out, "E:") {
			t.Fatalf("apt-get update: %v\n%s", err, out)
		}
		if out, err := apt.Run("install", "--download-only", "-y", "opencore"); err != nil {
			t.Fatalf("apt-get install --download-only opencore: %v\n%s", err, out)
		}
		for _, name := range []string{"libgrace", "opencore"} {
			p := published["dev debian/bookworm/amd64 "+name]
			got, err := os.ReadFile(filepath.Join(apt.Dir, "cache/archives", p.FileName))
			if err != nil {
				t.Fatalf("apt did not download %s: %v", p.FileName, err)
			}
			if sum := sha256.Sum256(got); hex.EncodeToString(sum[:]) != p.SHA256 {
				t.Errorf("%s: apt downloaded other bytes than the repo lists", p.FileName)
			}
		}
	})

	t.Run("dnf and rpm -K", func(t *testing.T) {
		text := f.text("/api/v1/repos/dev/client-config?target=centos/9/x86_64")
		repoFile, key, ok := strings.Cut(text, "\n# The key gpgkey= names")
		if !ok || !strings.Contains(repoFile, "repo_gpgcheck=1") || !strings.Contains(repoFile, "gpgcheck=1") {
			t.Fatalf("client config:\n%s", text)
		}
		if _, key, ok = strings.Cut(key, "\n"); !ok || strings.TrimSpace(key) != strings.TrimSpace(string(pubKey)) {
			t.Fatalf("client config does not end with the agent's public key:\n%s", text)
		}
		keyFile := filepath.Join(t.TempDir(), "RPM-GPG-KEY-kiln-dev")
		if err := os.WriteFile(keyFile, []byte(key), 0o644); err != nil {
			t.Fatal(err)
		}
		dnf := pkgclient.NewDnf(t, strings.ReplaceAll(repoFile, "file:///etc/pki/rpm-gpg/RPM-GPG-KEY-kiln-dev", "file://"+keyFile))
		if out, err := dnf.Run("install", "opencore"); err != nil {
			t.Fatalf("dnf install opencore: %v\n%s", err, out)
		}
		for _, name := range []string{"libgrace", "opencore"} {
			if _, err := os.Stat(filepath.Join(dnf.Dir, "root/usr/share", name, name+".txt")); err != nil {
				t.Errorf("dnf did not install %s: %v", name, err)
			}
		}
		// The worker built the rpm unsigned; what the repo serves carries
		// the agent's signature.
		rpmdb := t.TempDir()
		if out, err := pkgclient.Run(rpmdb, nil, "rpm", "--dbpath", rpmdb, "--import", keyFile); err != nil {
			t.Fatalf("rpm --import: %v\n%s", err, out)
		}
		p := published["dev centos/9/x86_64 opencore"]
		served := filepath.Join(t.TempDir(), p.FileName)
		f.download("/repos/dev/yum/centos/9/x86_64/"+rpmHref(t, f, p.FileName), served)
		out, err := pkgclient.Run(rpmdb, nil, "rpm", "--dbpath", rpmdb, "-Kv", served)
		if err != nil || !strings.Contains(out, "Header V4 EdDSA/SHA256 Signature") || strings.Contains(out, "NOKEY") || strings.Contains(out, "BAD") {
			t.Errorf("rpm -K on the served rpm: %v\n%s", err, out)
		}
	})

	t.Run("listing and client config through the typed client", func(t *testing.T) {
		// What kiln ctl repo ls and client-config print; cmd/kiln's
		// tests hold how they print it.
		c, ctx := client.New(f.URL, opsToken), context.Background()
		ls, err := c.Repos(ctx, "dev", "centos/9/x86_64")
		if err != nil {
			t.Fatalf("repo ls dev --target centos/9/x86_64: %v", err)
		}
		listed := map[string]api.RepoPackage{}
		for _, r := range ls.Repos {
			if r.Channel != "dev" || r.Target != "centos/9/x86_64" {
				t.Errorf("repo ls dev --target centos/9/x86_64 lists %s %s", r.Channel, r.Target)
			}
			for _, p := range r.Packages {
				listed[p.Name] = p
			}
		}
		want := published["dev centos/9/x86_64 opencore"]
		if _, ok := listed["libgrace"]; !ok || listed["opencore"].Version != want.Version || listed["opencore"].Arch != "x86_64" {
			t.Errorf("repo ls lists %+v, want libgrace and opencore %s for x86_64", listed, want.Version)
		}
		cc, err := c.ClientConfig(ctx, "dev", "debian/bookworm/amd64")
		if err != nil || cc != f.text("/api/v1/repos/dev/client-config?target=debian/bookworm/amd64") {
			t.Errorf("client-config differs from the API's (%v):\n%s", err, cc)
		}
	})

	t.Run("rollback", func(t *testing.T) {
		if code := f.call("POST", "/api/v1/repos/dev/rollback", nil, nil); code != http.StatusOK {
			t.Fatalf("rollback: HTTP %d", code)
		}
		// The last publish added the later of the two opencore packages;
		// the version before it did not have it, and state follows.
		after := f.listed()
		var gone []string
		for name := range published {
			if _, ok := after[name]; !ok {
				gone = append(gone, name)
			}
		}
		if len(gone) != 1 || !strings.HasSuffix(gone[0], " opencore") || len(after) != len(published)-1 {
			t.Errorf("after rollback %v are gone (listed %v), want one opencore", gone, after)
		}
		published = after
	})

	t.Run("a master without the trees republishes from state", func(t *testing.T) {
		// As a new leader whose disk never saw these packages: the
		// signed rpms come back from the object store, not from a worker.
		f.Stop()
		for _, d := range []string{"repos", "artifacts"} {
			if err := os.RemoveAll(filepath.Join(f.DataDir, d)); err != nil {
				t.Fatal(err)
			}
		}
		f.Restart()
		for name, p := range published {
			if !strings.HasPrefix(name, "dev centos") {
				continue
			}
			path := "/repos/dev/yum/centos/9/x86_64/"
			kilntest.WaitFor(t, 10*time.Second, "republished repomd.xml", func() bool { code, _ := f.get(path + "repodata/repomd.xml"); return code == http.StatusOK })
			code, body := f.get(path + rpmHref(t, f, p.FileName))
			if sum := sha256.Sum256([]byte(body)); code != http.StatusOK || hex.EncodeToString(sum[:]) != p.SHA256 {
				t.Errorf("%s after republishing: HTTP %d, sha256 %x, want the signed file %s", p.FileName, code, sum, p.SHA256)
			}
		}
	})

	t.Run("wrong arch fails and leaves the repo alone", func(t *testing.T) {
		_, before := f.get("/repos/dev/apt/debian/dists/bookworm/InRelease")
		bad := f.force("badarch").Builds
		for _, b := range f.waitFinished(time.Minute, bad...) {
			if b.Status != protocol.StatusFailure || !strings.Contains(b.Summary, `architecture is "arm64"`) && !strings.Contains(b.Summary, `architecture is "aarch64"`) {
				t.Errorf("build %d %s: %s %q, want failure naming the architecture", b.ID, b.Builder, b.Status, b.Summary)
			}
		}
		if _, after := f.get("/repos/dev/apt/debian/dists/bookworm/InRelease"); after != before {
			t.Error("InRelease changed after a refused package")
		}
		var list api.RepoList
		f.call("GET", "/api/v1/repos/dev/packages", nil, &list)
		for _, r := range list.Repos {
			for _, p := range r.Packages {
				if p.Name == "badarch" {
					t.Errorf("badarch listed in %s", r.Target)
				}
			}
		}
	})
}

// TestJobsNameTheirTargetsDevChannel: every job carries where its target's
// dev channel is and the key that signs it, for chroots to install fresh
// dependencies from.
func TestJobsNameTheirTargetsDevChannel(t *testing.T) {
	dir := t.TempDir()
	pubKey := startSigner(t, filepath.Join(dir, "data"), "demo")
	f := newFarm(t, farmOpts{}, farmtest.Dir(dir))
	w := startFakeWorker(t, f.NATSURL, "w1", []string{"debian", "centos"}, 4)
	f.waitFinished(10*time.Second, f.force("liba").Builds...)
	w.mu.Lock()
	defer w.mu.Unlock()
	want := map[string]string{
		"debian/bookworm/amd64": f.URL + "/repos/dev/apt/debian",
		"centos/9/x86_64":       f.URL + "/repos/dev/yum/centos/9/x86_64",
	}
	if len(w.jobs) == 0 {
		t.Fatal("no jobs")
	}
	for _, j := range w.jobs {
		if j.RepoURL != want[j.Target] || j.RepoKey != string(pubKey) {
			t.Errorf("job %s for %s: repo %q key %.40q, want %q and the agent's key", j.Build, j.Target, j.RepoURL, j.RepoKey, want[j.Target])
		}
	}
}

// TestReloadServesANewTargetAtOnce: a target added by a config reload is
// published, empty and signed, without waiting for a build or a timer.
func TestReloadServesANewTargetAtOnce(t *testing.T) {
	dir := t.TempDir()
	startSigner(t, filepath.Join(dir, "data"), "demo")
	f := newFarm(t, farmOpts{}, farmtest.Dir(dir))
	kilntest.WaitFor(t, 10*time.Second, "bookworm published", func() bool {
		code, _ := f.get("/repos/dev/apt/debian/dists/bookworm/InRelease")
		return code == http.StatusOK
	})
	f.writeConfig(strings.Replace(farmConfig(farmOpts{}), "versions: [bookworm]", "versions: [bookworm, trixie]", 1))
	if err := f.m().Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	kilntest.WaitFor(t, 5*time.Second, "trixie published after the reload", func() bool {
		code, _ := f.get("/repos/dev/apt/debian/dists/trixie/InRelease")
		return code == http.StatusOK
	})
}

// TestUnpublishableResults: what cannot be published ends the build with
// the reason, and the served tree stays as it was.
func TestUnpublishableResults(t *testing.T) {
	tests := []struct {
		name       string
		signer     bool
		artifact   string
		data       string
		wantStatus string
		wantIn     string
	}{
		{"corrupt deb", true, "liba_1.0_amd64.deb", "not a deb", protocol.StatusFailure, "corrupt"},
		{"path trick", true, "out/../../liba_1.0_amd64.deb", "not a deb", protocol.StatusFailure, "unsafe name"},
		// A source package is published whole or not at all.
		{"dsc lists a missing file", true, "dist/liba_1.0.dsc", "Source: liba\nVersion: 1.0\n" +
			"Files:\n 0123456789abcdef0123456789abcdef 10 liba_1.0.tar.xz\n" +
			"Checksums-Sha256:\n " + strings.Repeat("ab", 32) + " 10 liba_1.0.tar.xz\n", protocol.StatusFailure, "liba_1.0.tar.xz, which the build did not upload"},
		{"no signing agent", false, "liba_1.0_amd64.deb", "not a deb", protocol.StatusException, "repository publishing is off"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if tt.signer {
				startSigner(t, filepath.Join(dir, "data"), "demo")
			}
			f := newFarm(t, farmOpts{}, farmtest.Dir(dir))
			inRelease := "/repos/dev/apt/debian/dists/bookworm/InRelease"
			var before string
			if tt.signer {
				kilntest.WaitFor(t, 10*time.Second, "dev published", func() bool { code, _ := f.get(inRelease); return code == http.StatusOK })
				_, before = f.get(inRelease)
			}
			w := startFakeWorker(t, f.NATSURL, "w1", []string{"debian"}, 1)
			w.hold = make(chan struct{})
			id := f.force("liba@debian/bookworm/amd64").Builds[0]
			kilntest.WaitFor(t, 5*time.Second, "build to run", func() bool { return f.build(id).Status == protocol.StatusRunning })
			art := uploadArtifact(t, w, "x", []byte(tt.data))
			art.Name = tt.artifact
			if ack := w.report(protocol.Result{V: protocol.Version, Worker: "w1", Build: itoa(id), Attempt: f.build(id).Attempt,
				Status: protocol.StatusSuccess, Artifacts: []protocol.Artifact{art}, Started: time.Now(), Ended: time.Now()}); !ack.OK {
				t.Fatalf("result ack: %+v", ack)
			}
			close(w.hold)
			if b := f.build(id); b.Status != tt.wantStatus || !strings.Contains(b.Summary, tt.wantIn) {
				t.Errorf("build %s %q, want %s naming %q", b.Status, b.Summary, tt.wantStatus, tt.wantIn)
			}
			if _, after := f.get(inRelease); tt.signer && after != before {
				t.Error("the served InRelease changed")
			}
		})
	}
}

// TestRetentionDropsFromState: with repos.retain 1 a newer build of a
// package replaces the older in the served index and in state.
func TestRetentionDropsFromState(t *testing.T) {
	cfg := fmt.Sprintf(`
targets:
  - {distro: debian, versions: [bookworm], arches: [amd64], kind: nfpm, format: apt}
components:
  - {name: libgrace, git: %s}
workers:
  - {name: w1, credentials: w1.token, slots: 1}
users:
  - {name: ops, token: ops.token}
repos:
  retain: 1
  channels:
    - {name: dev, key: farmkey}
`, nfpmRepo(t, "libgrace", "${arch}", ""))
	dir := t.TempDir()
	startSigner(t, filepath.Join(dir, "data"), "farmkey")
	f := startFarm(t, cfg, farmtest.Dir(dir))
	f.runWorker("w1", 1)
	f.waitConnected("w1")
	var versions []string
	for range 2 {
		b := f.waitFinished(time.Minute, f.force("libgrace").Builds...)[0]
		if b.Status != protocol.StatusSuccess {
			t.Fatalf("build %d: %s %s", b.ID, b.Status, b.Summary)
		}
		versions = append(versions, f.listed()["dev debian/bookworm/amd64 libgrace"].Version)
	}
	var list api.RepoList
	f.call("GET", "/api/v1/repos/dev/packages", nil, &list)
	if len(list.Repos) != 1 || len(list.Repos[0].Packages) != 1 || list.Repos[0].Packages[0].Version != versions[1] || versions[0] == versions[1] {
		t.Fatalf("after two builds (versions %v) dev lists %+v, want only the newer", versions, list.Repos)
	}
	_, packages := f.get("/repos/dev/apt/debian/dists/bookworm/main/binary-amd64/Packages")
	if !strings.Contains(packages, "Version: "+versions[1]) || strings.Contains(packages, "Version: "+versions[0]+"\n") {
		t.Errorf("served Packages:\n%s\nwant only version %s", packages, versions[1])
	}
}

// listed is what the API says each channel lists: "CHANNEL TARGET NAME" →
// package.
func (f *farm) listed() map[string]api.RepoPackage {
	f.t.Helper()
	var repos api.RepoList
	if code := f.call("GET", "/api/v1/repos", nil, &repos); code != http.StatusOK {
		f.t.Fatalf("GET /api/v1/repos: HTTP %d", code)
	}
	out := map[string]api.RepoPackage{}
	for _, r := range repos.Repos {
		for _, p := range r.Packages {
			out[r.Channel+" "+r.Target+" "+p.Name] = p
		}
	}
	return out
}

// text GETs an API path that answers text.
func (f *farm) text(path string) string {
	f.t.Helper()
	code, body := f.get(path)
	if code != http.StatusOK {
		f.t.Fatalf("GET %s: HTTP %d %s", path, code, body)
	}
	return body
}

func (f *farm) download(path, to string) {
	f.t.Helper()
	if err := os.WriteFile(to, []byte(f.text(path)), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

// rpmHref finds where primary.xml says an rpm is, relative to the repo.
func rpmHref(t *testing.T, f *farm, fileName string) string {
	t.Helper()
	z, err := gzip.NewReader(strings.NewReader(f.text("/repos/dev/yum/centos/9/x86_64/" + primaryHref(t, f))))
	if err != nil {
		t.Fatal(err)
	}
	primary, err := io.ReadAll(z)
	if err != nil {
		t.Fatal(err)
	}
	for _, field := range strings.Split(string(primary), `<location href="`)[1:] {
		href, _, _ := strings.Cut(field, `"`)
		if filepath.Base(href) == fileName {
			return href
		}
	}
	t.Fatalf("%s not in primary.xml", fileName)
	return ""
}

func primaryHref(t *testing.T, f *farm) string {
	t.Helper()
	repomd := f.text("/repos/dev/yum/centos/9/x86_64/repodata/repomd.xml")
	_, rest, _ := strings.Cut(repomd, `<data type="primary">`)
	_, rest, _ = strings.Cut(rest, `<location href="`)
	href, _, ok := strings.Cut(rest, `"`)
	if !ok {
		t.Fatalf("no primary in repomd.xml:\n%s", repomd)
	}
	return href
}

// TestRebuildsUpgradeAndExactVersionsRefuse: a rebuild at an unchanged
// version is published under a higher one (the job lists what the builder
// has published, the worker adds +bN); a versions: exact component keeps
// its version, republishes the same bytes, and is refused other bytes at
// it instead of swapping the file under clients.
func TestRebuildsUpgradeAndExactVersionsRefuse(t *testing.T) {
	fixed := func(name string) *kilntest.Repo {
		r := kilntest.GitRepo(t)
		r.WriteFiles(map[string]string{
			"nfpm.yaml": "name: " + name + "\narch: amd64\nversion: 1.0.0\nmaintainer: Kiln tests <test@kiln.invalid>\ndescription: d\n" +
				"contents:\n  - {src: ./f.txt, dst: /usr/share/" + name + "/f.txt}\n",
			"f.txt": "one\n",
		})
		r.Commit("main", "package "+name)
		return r
	}
	same, pinned := fixed("same"), fixed("pinned")
	cfg := fmt.Sprintf(`
targets:
  - {distro: debian, versions: [bookworm], arches: [amd64], kind: nfpm, format: apt}
components:
  - {name: same, git: %s}
  - {name: pinned, git: %s, versions: exact}
workers:
  - {name: w1, credentials: w1.token, slots: 1}
users:
  - {name: ops, token: ops.token}
repos:
  channels:
    - {name: dev, key: farmkey}
`, same.Dir, pinned.Dir)
	dir := t.TempDir()
	startSigner(t, filepath.Join(dir, "data"), "farmkey")
	f := startFarm(t, cfg, farmtest.Dir(dir))
	f.runWorker("w1", 1)
	f.waitConnected("w1")
	build := func(component string) *api.Build {
		t.Helper()
		return f.waitFinished(time.Minute, f.force(component).Builds...)[0]
	}
	for i, want := range []string{"1.0.0", "1.0.0+b1", "1.0.0+b2"} {
		if b := build("same"); b.Status != protocol.StatusSuccess || b.Properties["binary_version"] != want {
			t.Fatalf("build %d of same: %s %q, binary_version %q; want %s", i+1, b.Status, b.Summary, b.Properties["binary_version"], want)
		}
	}
	_, packages := f.get("/repos/dev/apt/debian/dists/bookworm/main/binary-amd64/Packages")
	if !strings.Contains(packages, "Version: 1.0.0+b2\n") {
		t.Errorf("served Packages lacks the newest rebuild:\n%s", packages)
	}

	for i := range 2 { // the same commit twice: the same bytes
		if b := build("pinned"); b.Status != protocol.StatusSuccess || b.Properties["binary_version"] != "1.0.0" {
			t.Fatalf("build %d of pinned: %s %q, binary_version %q", i+1, b.Status, b.Summary, b.Properties["binary_version"])
		}
	}
	pinned.Write("f.txt", "two\n")
	pinned.Commit("main", "other contents, same version")
	b := build("pinned")
	if b.Status != protocol.StatusFailure || !strings.Contains(b.Summary, "pinned 1.0.0 amd64 is published already") {
		t.Errorf("other bytes at a published exact version: %s %q, want a failure naming it", b.Status, b.Summary)
	}
}
