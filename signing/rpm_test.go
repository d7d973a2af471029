package signing

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/rpmpack"

	"github.com/kiln-build/kiln/internal/kilntest"
)

// buildRPM makes a small package with rpmpack; sign may be nil.
func buildRPM(t testing.TB, sign func([]byte) ([]byte, error)) []byte {
	t.Helper()
	r, err := rpmpack.NewRPM(rpmpack.RPMMetaData{
		Name: "kiln-hello", Version: "1.0", Release: "1", Arch: "noarch",
		Summary: "test package", Description: "test package", Licence: "MIT",
		BuildTime: time.Unix(1700000000, 0), Compressor: "gzip",
	})
	if err != nil {
		t.Fatal(err)
	}
	r.AddFile(rpmpack.RPMFile{Name: "/usr/share/kiln-hello/hello.txt", Body: bytes.Repeat([]byte("hello from kiln\n"), 500), Mode: 0o644, Owner: "root", Group: "root"})
	if sign != nil {
		r.SetPGPSigner(sign)
	}
	var out bytes.Buffer
	if err := r.Write(&out); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// rpmCheck runs rpm -K against a private rpmdb holding only pubASC.
type rpmCheck struct {
	rpm, dbpath string
}

func newRPMCheck(t *testing.T, pubASC []byte) rpmCheck {
	t.Helper()
	rc := rpmCheck{rpm: kilntest.NeedTool(t, "rpm"), dbpath: t.TempDir()}
	pub := filepath.Join(t.TempDir(), "pub.asc")
	if err := os.WriteFile(pub, pubASC, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := run(t, rc.rpm, "--dbpath", rc.dbpath, "--import", pub); err != nil {
		t.Fatalf("rpm --import: %v\n%s", err, out)
	}
	return rc
}

func (rc rpmCheck) check(t *testing.T, pkg []byte) (string, bool) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kiln-hello-1.0-1.noarch.rpm")
	if err := os.WriteFile(path, pkg, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, rc.rpm, "--dbpath", rc.dbpath, "-K", path)
	verbose, _ := run(t, rc.rpm, "--dbpath", rc.dbpath, "-Kv", path)
	return out + "\n" + verbose, err == nil && strings.HasSuffix(out, ": digests signatures OK")
}

// headerOffset is where the main header starts in pkg.
func headerOffset(t testing.TB, pkg []byte) int {
	t.Helper()
	n, err := rpmHeaderLen(pkg[rpmLeadSize:])
	if err != nil {
		t.Fatal(err)
	}
	return rpmLeadSize + n + (8-n%8)%8
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0x01
	return c
}

func TestRPMSignedThroughAgentPassesRPMK(t *testing.T) {
	for _, typ := range keyTypes {
		t.Run(string(typ), func(t *testing.T) {
			a, _, audit := newTestAgent(t, Options{}, typ)
			c, _ := serveSocket(t, a, nil)
			rc := newRPMCheck(t, keyFor(t, typ).gen.Public)
			pkg := buildRPM(t, RPMSignFn(context.Background(), c, string(typ)))

			out, ok := rc.check(t, pkg)
			t.Logf("rpm -Kv:\n%s", out)
			if !ok || !strings.Contains(out, "Header V4") || !strings.Contains(out, "Signature, key ID") {
				t.Fatalf("rpm -Kv rejected the agent-signed rpm:\n%s", out)
			}
			hdrAt := headerOffset(t, pkg)
			hdrLen, _ := rpmHeaderLen(pkg[hdrAt:])
			for _, tc := range []struct {
				name string
				at   int
			}{
				{"header byte", hdrAt + hdrLen - 3},
				{"payload byte", len(pkg) - 100},
			} {
				if out, ok := rc.check(t, flip(pkg, tc.at)); ok {
					t.Errorf("rpm -K accepted the rpm with one %s changed:\n%s", tc.name, out)
				}
			}
			// Only the header and a hash state crossed the wire.
			for _, e := range audit.entries(t) {
				switch e.Kind {
				case KindRPMHeader:
					if e.Size != hdrLen {
						t.Errorf("rpm-header request carried %d bytes, header is %d", e.Size, hdrLen)
					}
				case KindSHA256State:
					if e.Size > 200 {
						t.Errorf("hash-state request carried %d bytes", e.Size)
					}
				default:
					t.Errorf("unexpected request kind %q", e.Kind)
				}
				if e.Item != "kiln-hello-1.0-1.noarch header" && e.Item != "kiln-hello-1.0-1.noarch header+payload" {
					t.Errorf("audit item = %q", e.Item)
				}
			}
		})
	}
}

func TestSignRPMFileInPlace(t *testing.T) {
	ctx := context.Background()
	a, _, audit := newTestAgent(t, Options{}, KeyRSA4096, KeyEd25519)
	c, _ := serveSocket(t, a, nil)
	for _, tc := range []struct {
		name string
		pkg  func() []byte
		key  KeyType
	}{
		{"unsigned rpm, rsa", func() []byte { return buildRPM(t, nil) }, KeyRSA4096},
		{"unsigned rpm, ed25519", func() []byte { return buildRPM(t, nil) }, KeyEd25519},
		{"rpm signed by another key, re-signed", func() []byte { return buildRPM(t, RPMSignFn(ctx, c, string(KeyRSA4096))) }, KeyEd25519},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pkg := tc.pkg()
			path := filepath.Join(t.TempDir(), "kiln-hello-1.0-1.noarch.rpm")
			if err := os.WriteFile(path, pkg, 0o640); err != nil {
				t.Fatal(err)
			}
			before := len(audit.entries(t))
			if err := SignRPMFile(ctx, c, string(tc.key), path); err != nil {
				t.Fatal(err)
			}
			signed, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if st, _ := os.Stat(path); st.Mode().Perm() != 0o640 {
				t.Errorf("mode after signing = %v, want 0640", st.Mode().Perm())
			}
			rc := newRPMCheck(t, keyFor(t, tc.key).gen.Public)
			if out, ok := rc.check(t, signed); !ok {
				t.Fatalf("rpm -K rejected the re-signed rpm:\n%s", out)
			}
			if out, ok := rc.check(t, flip(signed, len(signed)-10)); ok {
				t.Errorf("rpm -K accepted a changed payload:\n%s", out)
			}
			entries := audit.entries(t)[before:]
			hdrLen, _ := rpmHeaderLen(signed[headerOffset(t, signed):])
			if len(entries) != 1 || entries[0].Kind != KindRPMHeader || entries[0].Size != hdrLen {
				t.Errorf("re-signing sent %+v, want one header-only request of %d bytes", entries, hdrLen)
			}
		})
	}
}

func TestSignRPMRefusesNonRPM(t *testing.T) {
	a, _, audit := newTestAgent(t, Options{}, KeyEd25519)
	c := a.LocalClient("test")
	pkg := buildRPM(t, nil)
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"not an rpm", bytes.Repeat([]byte("x"), 200)},
		{"truncated header", pkg[:headerOffset(t, pkg)+40]},
		{"bad header magic", flip(pkg, headerOffset(t, pkg))},
	} {
		var out bytes.Buffer
		if err := SignRPM(context.Background(), c, string(KeyEd25519), bytes.NewReader(tc.data), &out); err == nil {
			t.Errorf("%s: SignRPM succeeded", tc.name)
		}
	}
	if n := len(audit.entries(t)); n != 0 {
		t.Errorf("%d signatures made for bad input", n)
	}
}
