package signing

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/internal/kilntest"
)

// Keys made with gpg, as an operator would, load and sign; gpgv verifies.
func TestGPGGeneratedKeys(t *testing.T) {
	gpg := kilntest.NeedTool(t, "gpg")
	gpgv := kilntest.NeedTool(t, "gpgv")
	home := t.TempDir()
	t.Cleanup(func() {
		cmd := exec.Command("gpgconf", "--kill", "gpg-agent")
		cmd.Env = append(os.Environ(), "GNUPGHOME="+home)
		cmd.Run()
	})
	gpgRun := func(args ...string) []byte {
		t.Helper()
		cmd := exec.Command(gpg, append([]string{"--batch", "--pinentry-mode", "loopback", "--passphrase", testPassphrase}, args...)...)
		cmd.Env = append(os.Environ(), "GNUPGHOME="+home)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("gpg %s: %v", strings.Join(args, " "), err)
		}
		return out
	}
	for _, tc := range []struct{ algo, uid string }{{"ed25519", "gpg-ed"}, {"rsa3072", "gpg-rsa"}} {
		t.Run(tc.algo, func(t *testing.T) {
			gpgRun("--quick-gen-key", tc.uid, tc.algo, "sign", "never")
			sec := filepath.Join(t.TempDir(), tc.uid+".sec.asc")
			if err := os.WriteFile(sec, gpgRun("--armor", "--export-secret-keys", tc.uid), 0o600); err != nil {
				t.Fatal(err)
			}
			k, err := LoadKey(tc.uid, sec)
			if err != nil {
				t.Fatal(err)
			}
			if err := k.Unlock([]byte(testPassphrase), 0); err != nil {
				t.Fatal(err)
			}
			a, err := NewAgent([]*Key{k}, Options{Audit: NewAuditLog(&syncBuffer{})})
			if err != nil {
				t.Fatal(err)
			}
			data := []byte("signed by a gpg-made key\n")
			sig, err := DetachSign(context.Background(), a.LocalClient("test"), tc.uid, "f", data)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, "f"), data, 0o644)
			os.WriteFile(filepath.Join(dir, "f.asc"), sig, 0o644)
			if out, err := run(t, gpgv, "--keyring", binaryKeyring(t, k.PublicKey()), filepath.Join(dir, "f.asc"), filepath.Join(dir, "f")); err != nil {
				t.Errorf("gpgv: %v\n%s", err, out)
			}
		})
	}
}
