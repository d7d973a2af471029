package repo_test

import (
	"context"
	"crypto/rand"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/kiln-build/kiln/internal/kilntest"
	"github.com/kiln-build/kiln/repo"
	"github.com/kiln-build/kiln/repo/internal/repotest"
	"github.com/kiln-build/kiln/repo/pkgmeta"
)

// mount runs mount(8) and skips when this machine does not allow it
// (no root, or a container without CAP_SYS_ADMIN).
func mount(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("mount", args...).CombinedOutput(); err != nil {
		t.Skipf("mount %v not permitted here: %v %s", args, err, out)
	}
}

func unmount(t *testing.T, dir string) {
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", dir, err, out)
		}
	})
}

// bigDeb builds a deb whose payload does not compress, so it fills a disk.
func bigDeb(t *testing.T, dir string, size int) *pkgmeta.Package {
	t.Helper()
	noise := make([]byte, size)
	if _, err := rand.Read(noise); err != nil {
		t.Fatal(err)
	}
	return read(t, repotest.BuildDeb(t, dir, repotest.Deb{Name: "big", Version: "1.0-1", Arch: "amd64", Compression: "none",
		Files: map[string]string{"usr/share/big/noise": string(noise)}}))
}

func TestDiskFullMidPublish(t *testing.T) {
	work := t.TempDir()
	root := filepath.Join(work, "tiny")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	mount(t, "-t", "tmpfs", "-o", "size=1m", "tmpfs", root)
	unmount(t, root)
	s := kilntest.Signer(t)
	pub := openPublisher(t, root, s)
	small := read(t, repotest.BuildDeb(t, work, repotest.Deb{Name: "hello", Version: "1.0-1", Arch: "amd64"}))
	publish(t, pub, "dev", repo.TargetContents{Target: bookwormAmd64, Packages: []*pkgmeta.Package{small}})

	big := bigDeb(t, work, 2<<20)
	publishRefused(t, pub, root, "publish onto a full disk", syscall.ENOSPC, small, big)
	noTempDirs(t, root, "dev")
	verifyChannel(t, root, "dev", s.PublicKey(t))

	// Now every package is stored and only the new indexes and tree need
	// room: fill the disk so the failure comes in the middle of the tree.
	other := read(t, repotest.BuildDeb(t, work, repotest.Deb{Name: "other", Version: "1.0-1", Arch: "amd64"}))
	publish(t, pub, "dev", repo.TargetContents{Target: bookwormAmd64, Packages: []*pkgmeta.Package{small, other}})
	filler := filepath.Join(root, "filler")
	fillDisk(t, filler)
	publishRefused(t, pub, root, "publish of new indexes onto a full disk", syscall.ENOSPC, other)
	noTempDirs(t, root, "dev")
	verifyChannel(t, root, "dev", s.PublicKey(t))

	// Once space is back, publishing works again.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	publish(t, pub, "dev", repo.TargetContents{Target: bookwormAmd64, Packages: []*pkgmeta.Package{other}})
	verifyChannel(t, root, "dev", s.PublicKey(t))
}

// publishRefused publishes pkgs as channel dev's bookworm/amd64 and checks
// that the filesystem refuses with want and that dev's current version
// stays where it was.
func publishRefused(t *testing.T, pub *repo.Publisher, root, what string, want syscall.Errno, pkgs ...*pkgmeta.Package) {
	t.Helper()
	before := currentID(t, root, "dev")
	_, err := pub.Publish(context.Background(), "dev", repo.ChannelContents{Targets: []repo.TargetContents{{Target: bookwormAmd64, Packages: pkgs}}})
	if !errors.Is(err, want) {
		t.Fatalf("%s: %v, want %v", what, err, want)
	}
	t.Logf("refused: %v", err)
	if got := currentID(t, root, "dev"); got != before {
		t.Errorf("current moved from %s to %s", before, got)
	}
}

// fillDisk writes to path until the filesystem is full.
func fillDisk(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	block := make([]byte, 4096)
	for {
		if _, err := f.Write(block); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			return
		}
	}
}

func TestReadOnlyChannelMidPublish(t *testing.T) {
	work := t.TempDir()
	root := filepath.Join(work, "repos")
	s := kilntest.Signer(t)
	pub := openPublisher(t, root, s)
	small := read(t, repotest.BuildDeb(t, work, repotest.Deb{Name: "hello", Version: "1.0-1", Arch: "amd64"}))
	publish(t, pub, "dev", repo.TargetContents{Target: bookwormAmd64, Packages: []*pkgmeta.Package{small}})

	// Root ignores permission bits, so a read-only bind mount stands in for
	// "permission denied": the store stays writable, the channel does not.
	chdir := filepath.Join(root, "dev")
	mount(t, "--bind", chdir, chdir)
	unmount(t, chdir)
	mount(t, "-o", "remount,ro,bind", chdir)
	other := read(t, repotest.BuildDeb(t, work, repotest.Deb{Name: "other", Version: "1.0-1", Arch: "amd64"}))
	publishRefused(t, pub, root, "publish into a read-only channel", syscall.EROFS, small, other)
	verifyChannel(t, root, "dev", s.PublicKey(t))
}
