package pkgmeta_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"
	"github.com/goreleaser/nfpm/v2/files"
	"github.com/goreleaser/nfpm/v2/rpm"

	"github.com/kiln-build/kiln/repo/pkgmeta"
)

// nfpmPackage builds a package the way Kiln's nfpm step does.
func nfpmPackage(t *testing.T, packager, compression string) string {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(dir, "README")
	if err := os.WriteFile(src, []byte("made by nfpm\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	info := nfpm.WithDefaults(&nfpm.Info{
		Name: "nfpmpkg", Arch: "amd64", Version: "1.2.3", Release: "4",
		Maintainer: "Kiln Tests <test@kiln.invalid>", Description: "made by nfpm", License: "MIT",
		Overridables: nfpm.Overridables{
			Depends:  []string{"libgrace1"},
			Contents: files.Contents{{Source: src, Destination: "/usr/share/nfpmpkg/README"}},
			Deb:      nfpm.Deb{Compression: compression},
			RPM:      nfpm.RPM{Compression: compression},
		},
	})
	if err := nfpm.PrepareForPackager(info, packager); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "pkg."+packager)
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var p nfpm.Packager = deb.Default
	if packager == "rpm" {
		p = rpm.DefaultRPM
	}
	if err := p.Package(info, f); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestReadNfpmPackages(t *testing.T) {
	tests := []struct {
		packager, compression string
		wantArch, wantVersion string
	}{
		{"deb", "gzip", "amd64", "1.2.3-4"},
		{"deb", "xz", "amd64", "1.2.3-4"},
		{"deb", "zstd", "amd64", "1.2.3-4"},
		{"rpm", "gzip", "x86_64", "1.2.3-4"},
		{"rpm", "zstd", "x86_64", "1.2.3-4"},
	}
	for _, tt := range tests {
		t.Run(tt.packager+"-"+tt.compression, func(t *testing.T) {
			path := nfpmPackage(t, tt.packager, tt.compression)
			p, err := pkgmeta.ReadFile(path, filepath.Base(path))
			if err != nil {
				t.Fatal(err)
			}
			if p.Name != "nfpmpkg" || p.Arch != tt.wantArch || p.FullVersion() != tt.wantVersion {
				t.Errorf("got %s %s %s", p.Name, p.FullVersion(), p.Arch)
			}
			if err := pkgmeta.Check(p, pkgmeta.Expect{Name: "nfpmpkg", Arch: tt.wantArch, Version: tt.wantVersion}); err != nil {
				t.Error(err)
			}
			if p.Format == pkgmeta.RPM {
				if len(p.RPM.Files) != 1 || p.RPM.Files[0].Path != "/usr/share/nfpmpkg/README" || len(p.RPM.Requires) == 0 {
					t.Errorf("rpm metadata %+v", p.RPM)
				}
			} else if p.Field("Depends") != "libgrace1" {
				t.Errorf("control %+v", p.Control)
			}
		})
	}
}
