package steps

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kiln-build/kiln/internal/kilntest"
)

func TestSourceDebian(t *testing.T) {
	kilntest.NeedTool(t, "dpkg-source", "dpkg-parsechangelog")
	tests := []struct {
		fixture, dsc, version string
		files                 []string
	}{
		// 3.0 (quilt): the orig tarball is made from the tree without debian/.
		{"libgreet", "dist/source/libgreet_1.0-1.dsc", "1.0-1", []string{"libgreet_1.0.orig.tar.gz", "libgreet_1.0-1.debian.tar.xz"}},
		{"greeter", "dist/source/greeter_1.0.dsc", "1.0", []string{"greeter_1.0.tar.xz"}},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			env, log := fixtureEnv(t, tt.fixture, "apt", "debian/bookworm/amd64")
			o, err := runStep(t, Source{}, env, nil)
			if err != nil {
				t.Fatalf("source: %v (%s)\n%s", err, o.Summary, log)
			}
			for prop, want := range map[string]string{"dsc": tt.dsc, "source_name": tt.fixture, "source_version": tt.version} {
				if got, _ := env.Props.Get(prop); got != want {
					t.Errorf("property %s = %q, want %q", prop, got, want)
				}
			}
			for _, f := range append(tt.files, filepath.Base(tt.dsc)) {
				if _, err := os.Stat(filepath.Join(env.Workspace, "dist/source", f)); err != nil {
					t.Errorf("missing %s: %v", f, err)
				}
			}
			if _, err := os.Stat(filepath.Join(env.Workspace, "dist/source", tt.fixture+"-1.0")); !os.IsNotExist(err) {
				t.Errorf("staged tree left behind: %v", err)
			}
		})
	}
}

func TestSourceRPM(t *testing.T) {
	kilntest.NeedTool(t, "rpmbuild", "rpmspec")
	env, log := fixtureEnv(t, "libgreet", "yum", "centos/9/x86_64")
	o, err := runStep(t, Source{}, env, nil)
	if err != nil {
		t.Fatalf("source: %v (%s)\n%s", err, o.Summary, log)
	}
	srpm, _ := env.Props.Get("srpm")
	if srpm != "dist/source/libgreet-1.0-1.src.rpm" {
		t.Errorf("srpm = %q", srpm)
	}
	if v, _ := env.Props.Get("source_version"); v != "1.0-1" {
		t.Errorf("source_version = %q", v)
	}
	if _, err := os.Stat(filepath.Join(env.Workspace, srpm)); err != nil {
		t.Fatal(err)
	}
}

// Same tree, same commit time: same tarball bytes, so a rebuilt orig
// tarball matches the one already in the archive. Entries sit under the
// top directory, without what skip names.
func TestTarballReproducible(t *testing.T) {
	dir := t.TempDir()
	var blobs [][]byte
	for _, name := range []string{"a.tar.gz", "b.tar.gz"} {
		p := filepath.Join(dir, name)
		if err := writeTarGz(p, "testdata/libgreet", "libgreet-1.0", time.Unix(1700000000, 0), "debian"); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		blobs = append(blobs, b)
	}
	if !bytes.Equal(blobs[0], blobs[1]) {
		t.Error("two tarballs of one tree differ")
	}
	zr, err := gzip.NewReader(bytes.NewReader(blobs[0]))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		if !strings.HasPrefix(h.Name, "libgreet-1.0/") || strings.HasPrefix(h.Name, "libgreet-1.0/debian") {
			t.Errorf("entry %s", h.Name)
		}
	}
	if !slices.Contains(names, "libgreet-1.0/greet.c") {
		t.Errorf("entries %v lack greet.c", names)
	}
}

// The source step's failures, one table per format: the reason is in the
// summary, and dist/ stays empty.
func TestSourceFailureReasonsDebian(t *testing.T) {
	kilntest.NeedTool(t, "dpkg-source", "dpkg-parsechangelog")
	setChangelogVersion := func(v string) func(*testing.T, string) {
		return func(t *testing.T, ws string) {
			p := filepath.Join(ws, "debian/changelog")
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			writeFile(t, p, strings.Replace(string(b), "(1.0-1)", "("+v+")", 1))
		}
	}
	runFailureCases(t, Source{}, "apt", "debian/bookworm/amd64", []failureCase{
		{"no debian dir", "libgreet", func(t *testing.T, ws string) { rmAll(t, ws, "debian") }, ErrNoPackaging, "no debian/ directory", nil},
		{"bad changelog", "libgreet", func(t *testing.T, ws string) {
			writeFile(t, filepath.Join(ws, "debian/changelog"), "this is not a changelog\n")
		}, ErrBadChangelog, "badly formatted heading line", nil},
		{"native with revision", "libgreet", func(t *testing.T, ws string) {
			writeFile(t, filepath.Join(ws, "debian/source/format"), "3.0 (native)\n")
		}, ErrBadChangelog, "has a Debian revision", nil},
		{"quilt without revision", "libgreet", setChangelogVersion("1.0"), ErrBadChangelog, "format 3.0 (quilt) but version 1.0 has no Debian revision", nil},
		// with: orig names a file that is not there.
		{"orig not there", "libgreet", func(*testing.T, string) {}, ErrMissingOrig,
			"source: missing orig tarball libgreet_1.0.orig.tar.gz: with: {orig: upstream/libgreet-1.0.tar.gz}", map[string]string{"orig": "upstream/libgreet-1.0.tar.gz"}},
		// with: orig is an older upstream than the tree: dpkg-source finds
		// upstream changes without a patch for them.
		{"orig older than the tree", "libgreet", func(t *testing.T, ws string) {
			if err := os.MkdirAll(filepath.Join(ws, ".kiln"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := writeTarGz(filepath.Join(ws, ".kiln/old.tar.gz"), ws, "libgreet-1.0", time.Unix(0, 0), ".git", ".kiln", "debian"); err != nil {
				t.Fatal(err)
			}
			writeFile(t, filepath.Join(ws, "greet.h"), "const char *greet(const char *name); /* changed */\n")
		}, ErrBuildFailed, "dpkg-source: package build failed: dpkg-source: error: aborting due to unexpected upstream changes", map[string]string{"orig": ".kiln/old.tar.gz"}},
	})
}

func TestSourceFailureReasonsRPM(t *testing.T) {
	kilntest.NeedTool(t, "rpmbuild", "rpmspec")
	runFailureCases(t, Source{}, "yum", "centos/9/x86_64", []failureCase{
		{"no spec", "libgreet", func(t *testing.T, ws string) { rmAll(t, ws, "libgreet.spec") }, ErrNoPackaging, "no *.spec", nil},
		{"bad spec", "libgreet", func(t *testing.T, ws string) {
			writeFile(t, filepath.Join(ws, "libgreet.spec"), "Name: libgreet\nVersion 1.0\n")
		}, ErrBadSpec, "Unknown tag", nil},
		{"spec without Source0", "libgreet", func(t *testing.T, ws string) {
			writeFile(t, filepath.Join(ws, "libgreet.spec"), "Name: libgreet\nVersion: 1.0\nRelease: 1\nSummary: s\nLicense: MIT\n%description\nd\n")
		}, ErrBadSpec, "lacks Name, Version, Release or Source0", nil},
	})
}

func rmAll(t *testing.T, ws, rel string) {
	t.Helper()
	if err := os.RemoveAll(filepath.Join(ws, rel)); err != nil {
		t.Fatal(err)
	}
}
