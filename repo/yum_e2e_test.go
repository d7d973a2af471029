package repo_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/internal/kilntest"
	"github.com/kiln-build/kiln/internal/pkgclient"
	"github.com/kiln-build/kiln/repo"
	"github.com/kiln-build/kiln/repo/internal/repotest"
	"github.com/kiln-build/kiln/repo/pkgmeta"
)

func TestDnfAcceptance(t *testing.T) {
	kilntest.NeedTool(t, "dnf", "rpm")
	work := t.TempDir()
	root := filepath.Join(work, "repos")
	signer := kilntest.Signer(t)
	pub := openPublisher(t, root, signer)
	hello := read(t, repotest.BuildRPM(t, work, repotest.RPM{Name: "hello", Version: "1.0", Release: "1", Sign: signer.RPMSign}))
	// Enough packages before "hello" that repodata spans several cached
	// gzip members: dnf must read them all.
	pkgs := []*pkgmeta.Package{hello}
	for i := range 300 {
		pkgs = append(pkgs, read(t, repotest.BuildRPM(t, work, repotest.RPM{Name: fmt.Sprintf("filler%03d", i), Version: "1", Release: "1"})))
	}
	publish(t, pub, "dev", repo.TargetContents{Target: centos9, Packages: pkgs})
	srv := serve(t, root)

	repoFile, err := repo.ClientConfig("dev", centos9, srv.URL+"/repos", signer.PublicKey(t))
	if err != nil {
		t.Fatal(err)
	}
	key := signer.WritePublicKey(t, work, "kiln.asc")
	repoFile = strings.Replace(repoFile, "gpgkey=file://"+repo.KeyPath("dev"), "gpgkey=file://"+key, 1)
	dnf := pkgclient.NewDnf(t, repoFile)
	out, err := dnf.Run("install", "hello")
	if err != nil {
		t.Fatalf("dnf install: %v\n%s", err, out)
	}
	got, err := os.ReadFile(filepath.Join(dnf.Dir, "root/usr/share/hello/hello.txt"))
	if err != nil || string(got) != "hello from hello\n" {
		t.Fatalf("installed file: %q %v\n%s", got, err, out)
	}
	if !contains(srv.requested(), "/repodata/repomd.xml.asc") {
		t.Errorf("dnf did not fetch repomd.xml.asc: %v", srv.requested())
	}

	t.Run("unsigned rpm refused", func(t *testing.T) {
		unsigned := read(t, repotest.BuildRPM(t, work, repotest.RPM{Name: "nosig", Version: "1.0", Release: "1"}))
		publish(t, pub, "dev", repo.TargetContents{Target: centos9, Packages: []*pkgmeta.Package{hello, unsigned}})
		out, err := dnf.Run("--refresh", "install", "nosig")
		if err == nil {
			t.Fatalf("dnf installed an unsigned rpm with gpgcheck=1:\n%s", out)
		}
		t.Logf("dnf refused: %s", lastLines(out, 3))
	})
	t.Run("modified repomd.xml", func(t *testing.T) {
		fresh := pkgclient.NewDnf(t, repoFile)
		repomd := filepath.Join(root, "dev/current/yum/centos/9/x86_64/repodata/repomd.xml")
		b, _ := os.ReadFile(repomd)
		flipByte(t, repomd, strings.Index(string(b), "<revision>")+11)
		out, err := fresh.Run("makecache")
		if err == nil {
			t.Fatalf("dnf accepted a modified repomd.xml:\n%s", out)
		}
		if !strings.Contains(strings.ToLower(out), "gpg") && !strings.Contains(strings.ToLower(out), "signature") {
			t.Errorf("dnf failed for another reason than the signature:\n%s", out)
		}
		t.Logf("dnf refused: %s", lastLines(out, 3))
	})
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// buildSRPM runs rpmbuild -ba on a spec that needs no sources and returns
// the binary rpm's and the source rpm's paths.
func buildSRPM(t *testing.T, dir, spec string) (bin, src string) {
	t.Helper()
	kilntest.NeedTool(t, "rpmbuild")
	top := t.TempDir()
	specPath := filepath.Join(top, "pkg.spec")
	if err := os.WriteFile(specPath, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := pkgclient.Run(top, nil, "rpmbuild", "-ba", "--nodeps", "--define", "_topdir "+top, "--define", "_build_id_links none", specPath); err != nil {
		t.Fatalf("rpmbuild -ba: %v\n%s", err, out)
	}
	bins, _ := filepath.Glob(filepath.Join(top, "RPMS", "*", "*.rpm"))
	srcs, _ := filepath.Glob(filepath.Join(top, "SRPMS", "*.src.rpm"))
	if len(bins) != 1 || len(srcs) != 1 {
		t.Fatalf("rpmbuild made %v and %v", bins, srcs)
	}
	return bins[0], srcs[0]
}

// The source rpm is published beside the binaries, where dnf download
// --source finds it; -debuginfo packages are only in the debug repository,
// which a client opts into.
func TestDnfSourceAndDebug(t *testing.T) {
	kilntest.NeedTool(t, "dnf", "rpm", "rpmbuild")
	work := t.TempDir()
	root := filepath.Join(work, "repos")
	signer := kilntest.Signer(t)
	pub := openPublisher(t, root, signer)
	binPath, srcPath := buildSRPM(t, work, "Name: srcdemo\nVersion: 1.0\nRelease: 3\nSummary: s\nLicense: MIT\nBuildArch: noarch\n"+
		"%description\nd\n%install\nmkdir -p %{buildroot}/usr/share/srcdemo\necho hi > %{buildroot}/usr/share/srcdemo/f\n"+
		"%files\n/usr/share/srcdemo/f\n%changelog\n* Thu Jan 01 2026 Kiln Tests <test@kiln.invalid> - 1.0-3\n- Third.\n")
	src := read(t, srcPath)
	if !src.IsSource() || src.FileName != "srcdemo-1.0-3.src.rpm" {
		t.Fatalf("source rpm read as %s (%s)", src.Arch, src.FileName)
	}
	debug := read(t, repotest.BuildRPM(t, work, repotest.RPM{Name: "srcdemo-debuginfo", Version: "1.0", Release: "3", Arch: "x86_64"}))
	publish(t, pub, "dev", repo.TargetContents{Target: centos9, Packages: []*pkgmeta.Package{read(t, binPath), src, debug}})
	srv := serve(t, root)

	repoFile, err := repo.ClientConfig("dev", centos9, srv.URL+"/repos", signer.PublicKey(t))
	if err != nil {
		t.Fatal(err)
	}
	repoFile = strings.ReplaceAll(repoFile, "gpgkey=file://"+repo.KeyPath("dev"), "gpgkey=file://"+signer.WritePublicKey(t, work, "kiln.asc"))
	// The rpms here are unsigned (rpmbuild's); the repository's own
	// signature is what this test is about.
	repoFile = strings.ReplaceAll(repoFile, "gpgcheck=1\nrepo_gpgcheck", "gpgcheck=0\nrepo_gpgcheck")
	dnf := pkgclient.NewDnf(t, repoFile)
	if out, err := dnf.RunPlugins("download", "--source", "--destdir", work, "srcdemo"); err != nil {
		t.Fatalf("dnf download --source: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(work, "srcdemo-1.0-3.src.rpm")); err != nil {
		t.Errorf("no source rpm downloaded: %v", err)
	}
	if out, err := dnf.Run("list", "--available", "srcdemo-debuginfo"); err == nil {
		t.Errorf("the debug package is listed without the debug repository:\n%s", out)
	}
	if out, err := dnf.Run("--enablerepo=*-debuginfo", "list", "--available", "srcdemo-debuginfo"); err != nil || !strings.Contains(out, "srcdemo-debuginfo") {
		t.Errorf("the debug package is not listed with the debug repository: %v\n%s", err, out)
	}
}
