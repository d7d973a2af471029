package repo_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/internal/kilntest"
	"github.com/kiln-build/kiln/internal/pkgclient"
	"github.com/kiln-build/kiln/repo"
	"github.com/kiln-build/kiln/repo/internal/repotest"
	"github.com/kiln-build/kiln/repo/pkgmeta"
)

func TestAptAcceptance(t *testing.T) {
	kilntest.NeedTool(t, "apt-get", "dpkg-deb", "gpgv")
	work := t.TempDir()
	root := filepath.Join(work, "repos")
	signer := kilntest.Signer(t)
	pub := openPublisher(t, root, signer)
	hello := read(t, repotest.BuildDeb(t, work, repotest.Deb{Name: "hello", Version: "1.0-1", Arch: "amd64", Depends: "hello-data"}))
	data := read(t, repotest.BuildDeb(t, work, repotest.Deb{Name: "hello-data", Source: "hello", Version: "1.0-1", Arch: "all", Compression: "zstd"}))
	armOnly := read(t, repotest.BuildDeb(t, work, repotest.Deb{Name: "hello", Version: "1.0-1", Arch: "arm64"}))
	// Enough packages before "hello" that the indexes span several cached
	// chunks: apt must read every gzip member and xz block.
	amd64 := []*pkgmeta.Package{hello, data}
	for i := range 300 {
		amd64 = append(amd64, read(t, repotest.GenDeb(t, work, fmt.Sprintf("filler%03d", i), "1.0-1", "amd64")))
	}
	publish(t, pub, "dev",
		repo.TargetContents{Target: bookwormAmd64, Packages: amd64},
		repo.TargetContents{Target: bookwormArm64, Packages: []*pkgmeta.Package{armOnly}})
	srv := serve(t, root)

	sources, err := repo.ClientConfig("dev", bookwormAmd64, srv.URL+"/repos", signer.PublicKey(t))
	if err != nil {
		t.Fatal(err)
	}
	apt := pkgclient.NewApt(t, sources)
	if out, err := apt.Run("update"); err != nil || strings.Contains(out, "W:") || strings.Contains(out, "E:") {
		t.Fatalf("apt-get update: %v\n%s", err, out)
	}
	paths := srv.requested()
	t.Logf("apt fetched %v", paths)
	if !contains(paths, "/repos/dev/apt/debian/dists/bookworm/InRelease") {
		t.Errorf("apt did not fetch InRelease: %v", paths)
	}
	if !contains(paths, "/main/binary-amd64/by-hash/SHA256/") {
		t.Errorf("apt did not fetch Packages by hash: %v", paths)
	}
	for _, p := range paths {
		if strings.HasSuffix(p, "/Packages.xz") || strings.HasSuffix(p, "/Packages.gz") || strings.HasSuffix(p, "/Packages") {
			t.Errorf("apt fetched an index by name, not by hash: %s", p)
		}
	}

	// Installing for real would touch the host; a download-only install
	// resolves dependencies (hello-data, Architecture: all) the same way.
	if out, err := apt.Run("install", "--download-only", "-y", "hello"); err != nil {
		t.Fatalf("apt-get install --download-only: %v\n%s", err, out)
	}
	for _, p := range []*pkgmeta.Package{hello, data} {
		got, err := os.ReadFile(filepath.Join(apt.Dir, "cache/archives", p.FileName))
		if err != nil {
			t.Fatalf("%s not downloaded: %v", p.FileName, err)
		}
		if sum := sha256.Sum256(got); hex.EncodeToString(sum[:]) != p.SHA256 {
			t.Errorf("%s: downloaded sha256 differs from the uploaded file", p.FileName)
		}
	}

	cur := filepath.Join(root, "dev", "current", "apt", "debian", "dists", "bookworm")
	if out, err := pkgclient.Run(work, nil, "xz", "--robot", "--list", filepath.Join(cur, "main/binary-amd64/Packages.xz")); err == nil {
		var streams, blocks int
		for _, line := range strings.Split(out, "\n") {
			if f := strings.Fields(line); len(f) > 2 && f[0] == "file" {
				streams, _ = strconv.Atoi(f[1])
				blocks, _ = strconv.Atoi(f[2])
			}
		}
		if streams != 1 || blocks < 2 {
			t.Errorf("Packages.xz has %d streams and %d blocks; the test wants one stream of several chunks", streams, blocks)
		}
	}
	t.Run("changed Packages byte", func(t *testing.T) {
		apt.Forget(t)
		for _, name := range []string{"Packages", "Packages.gz", "Packages.xz"} {
			flipByte(t, filepath.Join(cur, "main/binary-amd64", name), -2)
		}
		out, err := apt.Run("update")
		if err == nil || !strings.Contains(out, "Hash Sum mismatch") && !strings.Contains(out, "File has unexpected size") {
			t.Fatalf("apt-get update accepted a changed Packages (err %v):\n%s", err, out)
		}
		t.Logf("apt refused: %s", lastLines(out, 2))
	})
	t.Run("changed Release byte", func(t *testing.T) {
		publish(t, pub, "dev", repo.TargetContents{Target: bookwormAmd64, Packages: amd64[:2]})
		apt.Forget(t)
		in := filepath.Join(cur, "InRelease")
		b, _ := os.ReadFile(in)
		flipByte(t, in, strings.Index(string(b), "Origin: Kiln")+9)
		flipByte(t, filepath.Join(cur, "Release"), 9)
		out, err := apt.Run("update")
		if err == nil || !strings.Contains(out, "BADSIG") && !strings.Contains(out, "not signed") {
			t.Fatalf("apt-get update accepted a changed Release (err %v):\n%s", err, out)
		}
		t.Logf("apt refused: %s", lastLines(out, 2))
	})
}
