package pkgmeta

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const helloDSC = `Format: 3.0 (quilt)
Source: hello
Binary: hello
Architecture: all
Version: 1:1.0-3
Maintainer: Kiln Tests <test@kiln.invalid>
Standards-Version: 4.6.2
Build-Depends: debhelper-compat (= 13)
Package-List:
 hello deb misc optional arch=all
Checksums-Sha1:
 1111111111111111111111111111111111111111 120 hello_1.0.orig.tar.gz
 2222222222222222222222222222222222222222 300 hello_1.0-3.debian.tar.xz
Checksums-Sha256:
 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa 120 hello_1.0.orig.tar.gz
 bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb 300 hello_1.0-3.debian.tar.xz
Files:
 cccccccccccccccccccccccccccccccc 120 hello_1.0.orig.tar.gz
 dddddddddddddddddddddddddddddddd 300 hello_1.0-3.debian.tar.xz
`

func TestReadDSC(t *testing.T) {
	signed := "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\n" + helloDSC +
		"\n-----BEGIN PGP SIGNATURE-----\n\niQIzBAEBCgAdFiEE\n-----END PGP SIGNATURE-----\n"
	for name, content := range map[string]string{"plain": helloDSC, "clearsigned": signed} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "x.dsc")
			if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			p, err := ReadFile(path, "hello_1.0-3.dsc")
			if err != nil {
				t.Fatal(err)
			}
			if !p.IsSource() || p.Name != "hello" || p.Source != "hello" || p.Version != "1:1.0-3" || p.Epoch != 1 ||
				p.FileName != "hello_1.0-3.dsc" || p.Size != int64(len(content)) || p.Field("Build-Depends") != "debhelper-compat (= 13)" {
				t.Errorf("read %+v", p)
			}
			want := []SourceFile{
				{Name: "hello_1.0.orig.tar.gz", Size: 120, SHA256: strings.Repeat("a", 64), MD5: strings.Repeat("c", 32)},
				{Name: "hello_1.0-3.debian.tar.xz", Size: 300, SHA256: strings.Repeat("b", 64), MD5: strings.Repeat("d", 32)},
			}
			if len(p.Files) != 2 || p.Files[0] != want[0] || p.Files[1] != want[1] {
				t.Errorf("files %+v, want %+v", p.Files, want)
			}
		})
	}
}

// A .dsc comes from the build, so from the packaging under build: what it
// lists must not reach outside the source's pool directory.
func TestReadDSCRefuses(t *testing.T) {
	tests := []struct {
		name, from, to string
		want           error
	}{
		{"path in Files", " cccccccccccccccccccccccccccccccc 120 hello_1.0.orig.tar.gz\n dddd", " cccccccccccccccccccccccccccccccc 120 ../hello_1.0.orig.tar.gz\n dddd", ErrUnsafeName},
		{"another source's file", "dddddddddddddddddddddddddddddddd 300 hello_1.0-3.debian.tar.xz\n", "dddddddddddddddddddddddddddddddd 300 other_1.0-3.debian.tar.xz\n", ErrUnsafeName},
		{"checksum lists disagree", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb 300", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb 301", ErrCorrupt},
		{"no checksums", "Checksums-Sha256:", "X-Checksums:", ErrCorrupt},
		{"bad source name", "Source: hello", "Source: he/llo", ErrUnsafeName},
		{"not hex", "cccccccccccccccccccccccccccccccc 120", "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz 120", ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := strings.Replace(helloDSC, tt.from, tt.to, 1)
			if bad == helloDSC {
				t.Fatalf("%q is not in the .dsc", tt.from)
			}
			path := filepath.Join(t.TempDir(), "x.dsc")
			if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := ReadDSC(path); !errors.Is(err, tt.want) {
				t.Errorf("ReadDSC: %v, want %v", err, tt.want)
			}
		})
	}
}
