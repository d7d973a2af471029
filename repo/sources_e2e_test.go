package repo_test

import (
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

// buildSource makes a real source package with dpkg-source and reads it as
// the master does, its listed files found next to the .dsc.
func buildSource(t *testing.T, work, name, version, content string) *pkgmeta.Package {
	t.Helper()
	dir, err := os.MkdirTemp(work, name+"-src-")
	if err != nil {
		t.Fatal(err)
	}
	tree := filepath.Join(dir, name+"-"+version)
	for file, body := range map[string]string{
		"debian/changelog":     name + " (" + version + ") bookworm; urgency=medium\n\n  * Test.\n\n -- Kiln Tests <test@kiln.invalid>  Thu, 01 Jan 2026 00:00:00 +0000\n",
		"debian/control":       "Source: " + name + "\nMaintainer: Kiln Tests <test@kiln.invalid>\nBuild-Depends: debhelper-compat (= 13)\n\nPackage: " + name + "\nArchitecture: all\nDescription: test\n test\n",
		"debian/source/format": "3.0 (native)\n",
		"debian/rules":         "#!/usr/bin/make -f\n%:\n\tdh $@\n",
		"README":               content,
	} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(tree, file)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(tree, file), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := pkgclient.Run(dir, nil, "dpkg-source", "-b", filepath.Base(tree)); err != nil {
		t.Fatalf("dpkg-source -b: %v\n%s", err, out)
	}
	p, err := pkgmeta.ReadFile(filepath.Join(dir, name+"_"+version+".dsc"), name+"_"+version+".dsc")
	if err != nil {
		t.Fatal(err)
	}
	for i := range p.Files {
		p.Files[i].Path = filepath.Join(dir, p.Files[i].Name)
	}
	return p
}

// apt-get source fetches a published source package from the channel, its
// checksums verified against the signed Sources index, and unpacks it.
func TestAptSource(t *testing.T) {
	kilntest.NeedTool(t, "apt-get", "dpkg-source", "gpgv")
	work := t.TempDir()
	root := filepath.Join(work, "repos")
	signer := kilntest.Signer(t)
	pub := openPublisher(t, root, signer)
	src := buildSource(t, work, "hello", "1.0", "first\n")
	bin := read(t, repotest.BuildDeb(t, work, repotest.Deb{Name: "hello", Version: "1.0", Arch: "all"}))
	// The arm64 build of the same version made its own .dsc with other
	// bytes: the index lists one, and both stay whole in the pool.
	other := buildSource(t, work, "hello", "1.0", "second\n")
	publish(t, pub, "dev",
		repo.TargetContents{Target: bookwormAmd64, Packages: []*pkgmeta.Package{src, bin}},
		repo.TargetContents{Target: bookwormArm64, Packages: []*pkgmeta.Package{other}})
	srv := serve(t, root)

	cur := filepath.Join(root, "dev", "current", "apt", "debian", "dists", "bookworm")
	idx, err := os.ReadFile(filepath.Join(cur, "main/source/Sources"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(idx), "Package: hello\n"); n != 1 || !strings.Contains(string(idx), "Directory: pool/bookworm/main/h/hello\n") {
		t.Errorf("Sources lists hello %d times, want once in its pool directory:\n%s", n, idx)
	}
	release, _ := os.ReadFile(filepath.Join(cur, "Release"))
	if !strings.Contains(string(release), "main/source/Sources.xz") {
		t.Errorf("Release does not list the Sources index:\n%s", release)
	}

	sources, err := repo.ClientConfig("dev", bookwormAmd64, srv.URL+"/repos", signer.PublicKey(t))
	if err != nil {
		t.Fatal(err)
	}
	apt := pkgclient.NewApt(t, sources)
	if out, err := apt.Run("update"); err != nil || strings.Contains(out, "W:") || strings.Contains(out, "E:") {
		t.Fatalf("apt-get update: %v\n%s", err, out)
	}
	out, err := apt.Run("source", "hello")
	if err != nil {
		t.Fatalf("apt-get source: %v\n%s", err, out)
	}
	readme, err := os.ReadFile(filepath.Join(apt.Dir, "dl", "hello-1.0", "README"))
	if err != nil || string(readme) != "first\n" {
		t.Errorf("unpacked source README %q, %v; want the amd64 build's", readme, err)
	}
	// Retention and pruning keep what a listed source needs.
	if err := pub.Prune(t.Context(), "dev"); err != nil {
		t.Fatal(err)
	}
	apt.Forget(t)
	if out, err := apt.Run("update"); err != nil {
		t.Fatalf("apt-get update after prune: %v\n%s", err, out)
	}
	if out, err := apt.Run("source", "--download-only", "hello"); err != nil {
		t.Fatalf("apt-get source after prune: %v\n%s", err, out)
	}
}
