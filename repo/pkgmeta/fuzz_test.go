package pkgmeta_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/kiln-build/kiln/repo/internal/repotest"
	"github.com/kiln-build/kiln/repo/pkgmeta"
)

// FuzzReadPackage feeds damaged packages to the readers: every input must
// end in a Package or a classified error, never a panic.
func FuzzReadPackage(f *testing.F) {
	dir := f.TempDir()
	for _, p := range []string{
		repotest.GenDeb(f, dir, "seed", "1.0-1", "amd64"),
		repotest.BuildRPM(f, dir, repotest.RPM{Name: "seed", Version: "1", Release: "1", Requires: []string{"a >= 1"}}),
	} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, filepath.Ext(p) == ".rpm")
	}
	f.Fuzz(func(t *testing.T, data []byte, isRPM bool) {
		name := "x.deb"
		if isRPM {
			name = "x.rpm"
		}
		path := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		p, err := pkgmeta.ReadFile(path, name)
		if err != nil {
			if !errors.Is(err, pkgmeta.ErrCorrupt) && !errors.Is(err, pkgmeta.ErrUnsafeName) && !errors.Is(err, pkgmeta.ErrMismatch) {
				t.Fatalf("unclassified error: %v", err)
			}
			return
		}
		if pkgmeta.CheckFileName(p.FileName) != nil {
			t.Fatalf("accepted unsafe file name %q", p.FileName)
		}
	})
}
