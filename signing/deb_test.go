package signing

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/kiln-build/kiln/internal/kilntest"
)

func TestDebOriginSignatureVerifiesWithGPGV(t *testing.T) {
	gpgv := kilntest.NeedTool(t, "gpgv")
	a, _, audit := newTestAgent(t, Options{}, KeyEd25519)
	sign := DebOriginSignFn(context.Background(), a.LocalClient("test"), string(KeyEd25519), "hello_1.0_amd64.deb")
	parts := [][]byte{[]byte("2.0\n"), bytes.Repeat([]byte("control"), 100), bytes.Repeat([]byte("data"), 100000)}
	signed := bytes.Join(parts, nil)
	sig, err := sign(bytes.NewReader(signed))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	keyring := binaryKeyring(t, keyFor(t, KeyEd25519).gen.Public)
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	sigPath := write("_gpgorigin", sig)
	if out, err := run(t, gpgv, "--keyring", keyring, sigPath, write("signed", signed)); err != nil {
		t.Errorf("gpgv rejected the origin signature: %v\n%s", err, out)
	}
	if out, err := run(t, gpgv, "--keyring", keyring, sigPath, write("changed", flip(signed, len(signed)-1))); err == nil {
		t.Errorf("gpgv accepted a changed package:\n%s", out)
	}
	e := audit.entries(t)
	sum := sha256.Sum256(signed)
	if len(e) != 1 || e[0].Size > 200 || e[0].Item != "hello_1.0_amd64.deb _gpgorigin" || e[0].SHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("audit = %+v, want one small hash-state request", e)
	}
}
