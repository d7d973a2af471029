package apt_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/kiln-build/kiln/internal/kilntest"
	"github.com/kiln-build/kiln/repo/apt"
	"github.com/kiln-build/kiln/repo/pkgmeta"
)

func TestParagraph(t *testing.T) {
	fields, err := pkgmeta.ParseControl([]byte("Package: libgrace1\nSource: libgrace (1.2-3)\nVersion: 1:1.2-3\nArchitecture: amd64\nMaintainer: Kiln <k@kiln.invalid>\nDepends: libc6 (>= 2.36)\nSHA256: stale-value-from-control\nDescription: grace library\n Runtime files.\n .\n More.\nHomepage: https://kiln.invalid\n"))
	if err != nil {
		t.Fatal(err)
	}
	p := &pkgmeta.Package{Format: pkgmeta.Deb, Name: "libgrace1", Source: "libgrace", Version: "1:1.2-3", Arch: "amd64",
		FileName: "libgrace1_1.2-3_amd64.deb", Size: 1234, MD5: "0123456789abcdef0123456789abcdef",
		SHA256: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", Control: fields}
	if got := apt.PoolPath("bookworm", p); got != "pool/bookworm/main/libg/libgrace/libgrace1_1.2-3_amd64.deb" {
		t.Errorf("pool path %s", got)
	}
	var b bytes.Buffer
	apt.Paragraph(&b, p, apt.PoolPath("bookworm", p))
	kilntest.Golden(t, "testdata/paragraph.txt", b.Bytes())
}

func TestRelease(t *testing.T) {
	r := apt.Release{
		Origin: "Kiln", Label: "Kiln dev", Suite: "bookworm", Codename: "bookworm",
		Date:          time.Date(2026, 11, 22, 3, 4, 5, 0, time.UTC),
		ValidFor:      7 * 24 * time.Hour,
		Architectures: []string{"arm64", "amd64"},
		Files: []apt.IndexFile{
			{Path: "main/binary-arm64/Packages", Size: 0, SHA256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
			{Path: "main/binary-amd64/Packages.xz", Size: 512, SHA256: "1111111111111111111111111111111111111111111111111111111111111111"},
		},
	}
	kilntest.Golden(t, "testdata/Release", r.Bytes())
}
