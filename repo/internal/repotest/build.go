// Package repotest builds real packages for the repository tests; the
// signer they publish with is kilntest.Signer. It is never used outside
// tests.
package repotest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/rpmpack"
)

// Deb describes a small binary package built with dpkg-deb.
type Deb struct {
	Name, Version, Arch string
	Source              string // optional Source field
	Depends             string
	Compression         string // dpkg-deb -Z: gzip, xz, zstd, none
	Files               map[string]string
}

// BuildDeb builds d with dpkg-deb into dir and returns the .deb path.
func BuildDeb(t testing.TB, dir string, d Deb) string {
	t.Helper()
	NeedTool(t, "dpkg-deb")
	root, err := os.MkdirTemp(dir, "debroot-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(root)
	files := d.Files
	if files == nil {
		files = map[string]string{"usr/share/" + d.Name + "/hello.txt": "hello from " + d.Name + "\n"}
	}
	for p, body := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var c strings.Builder
	fmt.Fprintf(&c, "Package: %s\n", d.Name)
	if d.Source != "" {
		fmt.Fprintf(&c, "Source: %s\n", d.Source)
	}
	fmt.Fprintf(&c, "Version: %s\nArchitecture: %s\nMaintainer: Kiln Tests <test@kiln.invalid>\nInstalled-Size: 1\n", d.Version, d.Arch)
	if d.Depends != "" {
		fmt.Fprintf(&c, "Depends: %s\n", d.Depends)
	}
	c.WriteString("Section: misc\nPriority: optional\nDescription: test package " + d.Name + "\n A package built by the Kiln repository tests.\n .\n Second paragraph.\n")
	if err := os.MkdirAll(filepath.Join(root, "DEBIAN"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "DEBIAN", "control"), []byte(c.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	comp := d.Compression
	if comp == "" {
		comp = "xz"
	}
	out := filepath.Join(dir, fmt.Sprintf("%s_%s_%s.deb", d.Name, d.Version, d.Arch))
	cmd := exec.Command("dpkg-deb", "--root-owner-group", "-Z"+comp, "--build", root, out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb: %v\n%s", err, b)
	}
	return out
}

// RPM describes a small rpm built with rpmpack.
type RPM struct {
	Name, Version, Release, Arch string
	Epoch                        uint32
	Requires, Provides           []string
	Conflicts, Obsoletes         []string
	Files                        map[string]string
	// Sign, when set, signs the header like rpmsign does.
	Sign func([]byte) ([]byte, error)
}

// BuildRPM builds r into dir and returns the .rpm path.
func BuildRPM(t testing.TB, dir string, r RPM) string {
	t.Helper()
	rel := func(list []string) rpmpack.Relations {
		var rs rpmpack.Relations
		for _, s := range list {
			if err := rs.Set(s); err != nil {
				t.Fatalf("relation %q: %v", s, err)
			}
		}
		return rs
	}
	arch := r.Arch
	if arch == "" {
		arch = "noarch"
	}
	p, err := rpmpack.NewRPM(rpmpack.RPMMetaData{
		Name: r.Name, Version: r.Version, Release: r.Release, Arch: arch, Epoch: r.Epoch,
		Summary: "test package " + r.Name, Description: "A package built by the Kiln repository tests.",
		Licence: "MIT", Vendor: "Kiln", URL: "https://kiln.invalid/" + r.Name, Group: "Unspecified",
		Packager: "Kiln Tests <test@kiln.invalid>", BuildHost: "kiln-test",
		BuildTime: time.Unix(1700000000, 0),
		Requires:  rel(r.Requires), Provides: rel(r.Provides),
		Conflicts: rel(r.Conflicts), Obsoletes: rel(r.Obsoletes),
	})
	if err != nil {
		t.Fatal(err)
	}
	files := r.Files
	if files == nil {
		files = map[string]string{"/usr/share/" + r.Name + "/hello.txt": "hello from " + r.Name + "\n"}
	}
	for name, body := range files {
		p.AddFile(rpmpack.RPMFile{Name: name, Body: []byte(body), Mode: 0o100644, Owner: "root", Group: "root", MTime: 1700000000})
	}
	if r.Sign != nil {
		p.SetPGPSigner(r.Sign)
	}
	out := filepath.Join(dir, fmt.Sprintf("%s-%s-%s.%s.rpm", r.Name, r.Version, r.Release, arch))
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := p.Write(f); err != nil {
		t.Fatalf("rpmpack: %v", err)
	}
	return out
}

// BuildSpec builds a binary rpm from a spec with rpmbuild (no sources
// needed: the spec writes its files in %install) and returns its path.
func BuildSpec(t testing.TB, dir, spec string) string {
	t.Helper()
	NeedTool(t, "rpmbuild")
	top, err := os.MkdirTemp(dir, "rpmbuild-")
	if err != nil {
		t.Fatal(err)
	}
	specPath := filepath.Join(top, "pkg.spec")
	if err := os.WriteFile(specPath, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("rpmbuild", "-bb", "--nodeps", "--define", "_topdir "+top, "--define", "_build_id_links none", specPath)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("rpmbuild: %v\n%s", err, b)
	}
	found, err := filepath.Glob(filepath.Join(top, "RPMS", "*", "*.rpm"))
	if err != nil || len(found) != 1 {
		t.Fatalf("rpmbuild made %v (%v)", found, err)
	}
	out := filepath.Join(dir, filepath.Base(found[0]))
	if err := os.Rename(found[0], out); err != nil {
		t.Fatal(err)
	}
	return out
}
