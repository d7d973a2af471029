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
	signer := repotest.Signer(t)
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
