package signing

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/kiln-build/kiln/internal/kilntest"
)

// An rpm made by rpmbuild (with its reserved-space tag and digests) is
// re-signed in place and passes rpm -K; the path mock and rpmbuild steps use.
func TestSignRPMFileFromRPMBuild(t *testing.T) {
	rpmbuild := kilntest.NeedTool(t, "rpmbuild")
	top := t.TempDir()
	spec := filepath.Join(top, "hello.spec")
	if err := os.WriteFile(spec, []byte(`Name: kiln-rpmbuild-hello
Version: 1.0
Release: 1
Summary: test
License: MIT
BuildArch: noarch
%description
test
%install
mkdir -p %{buildroot}/usr/share/kiln
echo hello > %{buildroot}/usr/share/kiln/hello
%files
/usr/share/kiln/hello
`), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := run(t, rpmbuild, "--define", "_topdir "+top, "--define", "_build_id_links none", "-bb", spec); err != nil {
		t.Fatalf("rpmbuild: %v\n%s", err, out)
	}
	path := filepath.Join(top, "RPMS", "noarch", "kiln-rpmbuild-hello-1.0-1.noarch.rpm")
	a, _, audit := newTestAgent(t, Options{}, KeyRSA4096)
	c, _ := serveSocket(t, a, nil)
	if err := SignRPMFile(context.Background(), c, string(KeyRSA4096), path); err != nil {
		t.Fatal(err)
	}
	signed, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	rc := newRPMCheck(t, keyFor(t, KeyRSA4096).gen.Public)
	if out, ok := rc.check(t, signed); !ok {
		t.Fatalf("rpm -K rejected the re-signed rpmbuild package:\n%s", out)
	}
	if out, ok := rc.check(t, flip(signed, len(signed)-20)); ok {
		t.Errorf("rpm -K accepted a changed payload:\n%s", out)
	}
	if e := audit.entries(t); len(e) != 1 || e[0].Item != "kiln-rpmbuild-hello-1.0-1.noarch header" {
		t.Errorf("audit = %+v", e)
	}
}
