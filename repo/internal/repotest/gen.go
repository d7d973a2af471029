package repotest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// GenDeb writes a minimal but valid .deb without dpkg-deb, fast enough to
// make thousands for benchmarks. dpkg-deb and apt-ftparchive accept it.
func GenDeb(t testing.TB, dir, name, version, arch string) string {
	t.Helper()
	control := fmt.Sprintf("Package: %s\nVersion: %s\nArchitecture: %s\nMaintainer: Kiln Bench <bench@kiln.invalid>\nInstalled-Size: 1\nSection: misc\nPriority: optional\nDescription: generated package %s\n Generated for the repository benchmarks.\n", name, version, arch, name)
	ctl := tarGz(t, map[string]string{"./control": control})
	data := tarGz(t, map[string]string{"./usr/share/" + name + "/README": "generated " + name + "\n"})
	var ar bytes.Buffer
	ar.WriteString("!<arch>\n")
	for _, m := range []struct {
		name string
		body []byte
	}{{"debian-binary", []byte("2.0\n")}, {"control.tar.gz", ctl}, {"data.tar.gz", data}} {
		fmt.Fprintf(&ar, "%-16s%-12d%-6d%-6d%-8s%-10d`\n", m.name, 1700000000, 0, 0, "100644", len(m.body))
		ar.Write(m.body)
		if len(m.body)%2 == 1 {
			ar.WriteByte('\n')
		}
	}
	out := filepath.Join(dir, fmt.Sprintf("%s_%s_%s.deb", name, version, arch))
	if err := os.WriteFile(out, ar.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

func tarGz(t testing.TB, files map[string]string) []byte {
	var b bytes.Buffer
	z := gzip.NewWriter(&b)
	tw := tar.NewWriter(z)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
