package signing

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/eddsa"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

func writeEntity(t *testing.T, cfg *packet.Config) string {
	t.Helper()
	ent, err := openpgp.NewEntity("other", "", "other@kiln.invalid", cfg)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := armorTo(&buf, openpgp.PrivateKeyType, func(w io.Writer) error { return ent.SerializePrivate(w, nil) }); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "other.sec.asc")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadKeyRefusesWhatPackageToolsReject(t *testing.T) {
	rsaKey := keyFor(t, KeyRSA4096)
	good, err := os.ReadFile(rsaKey.secPath)
	if err != nil {
		t.Fatal(err)
	}
	writeFile := func(name string, data []byte) string {
		p := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := []struct {
		name     string
		path     string
		sentinel error
		msg      string
	}{
		{"v6 key", writeEntity(t, &packet.Config{V6Keys: true, Algorithm: packet.PubKeyAlgoEd25519}), ErrUnsupportedKey, "OpenPGP v6 key"},
		{"RSA-2048", writeEntity(t, &packet.Config{Algorithm: packet.PubKeyAlgoRSA, RSABits: 2048}), ErrUnsupportedKey, "RSA-2048 key; at least RSA-3072"},
		{"RFC 9580 Ed25519 on v4", writeEntity(t, &packet.Config{Algorithm: packet.PubKeyAlgoEd25519}), ErrUnsupportedKey, "algorithm 27"},
		{"public key only", rsaKey.pubPath, ErrUnsupportedKey, "armor type"},
		{"corrupt body", writeFile("corrupt.asc", bytes.Replace(good, good[200:260], bytes.Repeat([]byte("A"), 60), 1)), nil, "parse OpenPGP key"},
		{"truncated", writeFile("truncated.asc", good[:len(good)/2]), nil, "parse OpenPGP key"},
		{"not a key", writeFile("garbage.asc", []byte("hello\n")), nil, "not an armored OpenPGP key"},
		{"missing", filepath.Join(t.TempDir(), "missing.asc"), os.ErrNotExist, "no such file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadKey("k", tc.path)
			if err == nil {
				t.Fatal("LoadKey accepted the key")
			}
			if tc.sentinel != nil && !errors.Is(err, tc.sentinel) {
				t.Errorf("error %v is not %v", err, tc.sentinel)
			}
			if !strings.Contains(err.Error(), tc.msg) || !strings.Contains(err.Error(), tc.path) {
				t.Errorf("error %q does not say %q and name the file", err, tc.msg)
			}
		})
	}
}

func TestUnlockWrongPassphraseAndLockZeroes(t *testing.T) {
	tk := keyFor(t, KeyEd25519)
	k, err := LoadKey("ed", tk.secPath)
	if err != nil {
		t.Fatal(err)
	}
	if !k.Encrypted() || !k.Locked() {
		t.Fatal("a freshly loaded encrypted key must be locked")
	}
	if err := k.Unlock([]byte("wrong"), 0); !errors.Is(err, ErrBadPassphrase) {
		t.Fatalf("wrong passphrase: err = %v, want ErrBadPassphrase", err)
	}
	if !k.Locked() {
		t.Fatal("key unlocked by a wrong passphrase")
	}
	if err := k.Unlock([]byte(testPassphrase), 0); err != nil {
		t.Fatal(err)
	}
	seed := k.signer.PrivateKey.(*eddsa.PrivateKey).D
	if bytes.Equal(seed, make([]byte, len(seed))) {
		t.Fatal("unlocked seed is all zero")
	}
	k.Lock()
	if !bytes.Equal(seed, make([]byte, len(seed))) {
		t.Error("Lock left the Ed25519 seed in memory")
	}
	if err := k.withSigner(func(*packet.PrivateKey) error { return nil }); !errors.Is(err, ErrLocked) {
		t.Errorf("signing with a locked key: err = %v, want ErrLocked", err)
	}
}

func TestParseKeySpec(t *testing.T) {
	for _, tc := range []struct{ spec, name, path string }{
		{"prod=/etc/kiln/keys/p.asc", "prod", "/etc/kiln/keys/p.asc"},
		{"/etc/kiln/keys/dev.sec.asc", "dev", "/etc/kiln/keys/dev.sec.asc"},
		{"./a=b/dev.asc", "dev", "./a=b/dev.asc"},
	} {
		if n, p := ParseKeySpec(tc.spec); n != tc.name || p != tc.path {
			t.Errorf("ParseKeySpec(%q) = %q, %q; want %q, %q", tc.spec, n, p, tc.name, tc.path)
		}
	}
}
