package signing

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp/armor"

	"github.com/kiln-build/kiln/internal/kilntest"
)

// binaryKeyring writes the armored public key as a binary keyring, the
// form gpgv reads with --keyring.
func binaryKeyring(t *testing.T, pubASC []byte) string {
	t.Helper()
	block, err := armor.Decode(bytes.NewReader(pubASC))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(block.Body)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "pub.gpg")
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestGPGVVerifiesAgentSignatures(t *testing.T) {
	gpgv := kilntest.NeedTool(t, "gpgv")
	release := []byte("Origin: Kiln\nLabel: Kiln dev\nSuite: dev\nCodename: bookworm\n- a line that must be dash-escaped\nSHA256:\n 0123 45 main/binary-amd64/Packages\n")
	for _, typ := range keyTypes {
		t.Run(string(typ), func(t *testing.T) {
			a, _, _ := newTestAgent(t, Options{}, typ)
			c, _ := serveSocket(t, a, nil)
			ctx := context.Background()
			pub, err := c.PublicKey(ctx, string(typ))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(pub, keyFor(t, typ).gen.Public) {
				t.Fatal("agent's public key differs from the generated one")
			}
			keyring := binaryKeyring(t, pub)
			dir := t.TempDir()

			detached, err := DetachSign(ctx, c, string(typ), "Release", release)
			if err != nil {
				t.Fatal(err)
			}
			clear, err := Clearsign(ctx, c, string(typ), "InRelease", release)
			if err != nil {
				t.Fatal(err)
			}
			write := func(name string, data []byte) string {
				p := filepath.Join(dir, name)
				if err := os.WriteFile(p, data, 0o644); err != nil {
					t.Fatal(err)
				}
				return p
			}
			tampered := bytes.Replace(release, []byte("Kiln dev"), []byte("Kiln dex"), 1)
			cases := []struct {
				name string
				args []string
				ok   bool
			}{
				{"detached", []string{write("Release.gpg", detached), write("Release", release)}, true},
				{"detached, modified file", []string{write("Release.gpg", detached), write("Release.bad", tampered)}, false},
				{"clearsigned", []string{write("InRelease", clear)}, true},
				{"clearsigned, modified text", []string{write("InRelease.bad", bytes.Replace(clear, []byte("Kiln dev"), []byte("Kiln dex"), 1))}, false},
			}
			for _, tc := range cases {
				out, err := run(t, gpgv, append([]string{"--keyring", keyring}, tc.args...)...)
				if (err == nil) != tc.ok {
					t.Errorf("%s: gpgv ok=%v, want %v:\n%s", tc.name, err == nil, tc.ok, out)
				}
			}
			// The clearsigned text must come back unchanged for apt.
			if !bytes.Contains(clear, []byte("- - a line that must be dash-escaped")) {
				t.Errorf("clearsigned text is not dash-escaped:\n%s", clear)
			}
		})
	}
}
