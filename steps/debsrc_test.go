package steps

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The parts of completeSourcePackages a real build does not reach: an orig
// with other bytes than the .dsc names is not copied, and one that is
// nowhere is left for the lintian step to name. (The copy itself runs in
// TestLintianRevision3Upload on a real build.)
func TestCompleteSourcePackages(t *testing.T) {
	const orig = "hello_1.0.orig.tar.gz"
	sum := sha256.Sum256([]byte("upstream"))
	dsc := fmt.Sprintf("Format: 3.0 (quilt)\nSource: hello\nChecksums-Sha256:\n %s 8 %s\n %s 3 hello_1.0-3.debian.tar.xz\nFiles:\n 0123 8 %s\n 4567 3 hello_1.0-3.debian.tar.xz\n",
		hex.EncodeToString(sum[:]), orig, strings.Repeat("0", 64), orig)
	tests := []struct {
		name    string
		source  string // the orig in dist/source; "" for none
		want    error
		copied  bool
		logHint string
	}{
		{"copied", "upstream", nil, true, "copied " + orig},
		{"other bytes", "another upstream", ErrBuildFailed, false, ""},
		{"nowhere", "", nil, false, "which is neither in dist nor in dist/source"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, log := newTestEnv(t, jobFor("debian/bookworm/amd64", "apt"))
			dist := filepath.Join(env.Workspace, "dist")
			writeFile(t, filepath.Join(dist, "hello_1.0-3.dsc"), dsc)
			writeFile(t, filepath.Join(dist, "hello_1.0-3.debian.tar.xz"), "deb")
			if tt.source != "" {
				writeFile(t, filepath.Join(dist, "source", orig), tt.source)
			}
			err := completeSourcePackages(env, dist, filepath.Join(dist, "source"))
			if !errors.Is(err, tt.want) || (err == nil) != (tt.want == nil) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			_, statErr := os.Stat(filepath.Join(dist, orig))
			if copied := statErr == nil; copied != tt.copied {
				t.Errorf("orig in dist: %v, want %v", copied, tt.copied)
			}
			if tt.logHint != "" && !log.has(tt.logHint) {
				t.Errorf("log lacks %q:\n%s", tt.logHint, log)
			}
		})
	}
}

func TestListedFiles(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "x.changes")
	// Clearsigned, with a Description whose continuation lines must not be
	// taken for files.
	writeFile(t, p, `-----BEGIN PGP SIGNED MESSAGE-----
Hash: SHA512

Format: 1.8
Source: hello
Description:
 hello      - says hello, for the Kiln tests
Checksums-Sha256:
 aaaa 10 hello_1.0-3.dsc
Files:
 0123 10 misc optional hello_1.0-3.dsc
 4567 20 misc optional hello_1.0-3_all.deb
-----BEGIN PGP SIGNATURE-----

 iQ not a file
-----END PGP SIGNATURE-----
`)
	got, err := listedFiles(p)
	if err != nil {
		t.Fatal(err)
	}
	want := []listedFile{{"hello_1.0-3.dsc", "aaaa"}, {"hello_1.0-3_all.deb", ""}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("listedFiles = %v, want %v", got, want)
	}
	for _, name := range []string{"hello_1.0.orig.tar.gz", "hello_1.0.orig.tar.gz.asc", "hello_1.0.orig-docs.tar.xz", "hello_1.0.orig.tar.bz2"} {
		if !isOrig(name) {
			t.Errorf("isOrig(%s) = false", name)
		}
	}
	if isOrig("hello_1.0-3.debian.tar.xz") || isOrig("hello_1.0.tar.xz") {
		t.Error("isOrig took a debian or native tarball for an orig")
	}
}
