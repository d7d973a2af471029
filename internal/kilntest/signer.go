package kilntest

import (
	"bytes"
	"context"
	"crypto"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// TestSigner signs with a throwaway OpenPGP key: the tests' stand-in for
// the signing agent where a test is about what is signed, not about the
// agent: a v4 RSA key
// generated in memory, real OpenPGP signatures, one key for every name.
type TestSigner struct {
	entity *openpgp.Entity
	config *packet.Config
	// Fail, when set, makes every signature fail (signer outage tests).
	Fail error
}

// testKey is one process-wide key: RSA key generation is slow under
// -race, so each is made once.
type testKey struct {
	once   sync.Once
	signer *TestSigner
	err    error
}

var signerKey, otherKey testKey

func (k *testKey) get(t testing.TB, name string) *TestSigner {
	t.Helper()
	k.once.Do(func() {
		cfg := &packet.Config{Algorithm: packet.PubKeyAlgoRSA, RSABits: 2048, DefaultHash: crypto.SHA256}
		var e *openpgp.Entity
		e, k.err = openpgp.NewEntity(name, "tests only", "test@kiln.invalid", cfg)
		k.signer = &TestSigner{entity: e, config: cfg}
	})
	if k.err != nil {
		t.Fatalf("test signer: %v", k.err)
	}
	return &TestSigner{entity: k.signer.entity, config: k.signer.config}
}

// Signer returns the process-wide test signer.
func Signer(t testing.TB) *TestSigner { return signerKey.get(t, "Kiln test signer") }

// OtherSigner returns a second process-wide signer with another key, for
// tests of what a signature by the wrong key does.
func OtherSigner(t testing.TB) *TestSigner { return otherKey.get(t, "Kiln other signer") }

func (s *TestSigner) Clearsign(_ context.Context, _ string, data []byte) ([]byte, error) {
	if s.Fail != nil {
		return nil, s.Fail
	}
	var b bytes.Buffer
	w, err := clearsign.Encode(&b, s.entity.PrivateKey, s.config)
	if err != nil {
		return nil, fmt.Errorf("test clearsign: %w", err)
	}
	if _, err := w.Write(data); err != nil {
		return nil, fmt.Errorf("test clearsign: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("test clearsign: %w", err)
	}
	return b.Bytes(), nil
}

func (s *TestSigner) DetachSign(_ context.Context, _ string, data []byte) ([]byte, error) {
	if s.Fail != nil {
		return nil, s.Fail
	}
	var b bytes.Buffer
	if err := openpgp.ArmoredDetachSign(&b, s.entity, bytes.NewReader(data), s.config); err != nil {
		return nil, fmt.Errorf("test detach sign: %w", err)
	}
	return b.Bytes(), nil
}

// RPMSign returns a binary detached signature, the form rpm headers carry.
func (s *TestSigner) RPMSign(data []byte) ([]byte, error) {
	var b bytes.Buffer
	if err := openpgp.DetachSign(&b, s.entity, bytes.NewReader(data), s.config); err != nil {
		return nil, fmt.Errorf("test rpm sign: %w", err)
	}
	return b.Bytes(), nil
}

// PublicKey returns the armored public key.
func (s *TestSigner) PublicKey(t testing.TB) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := armor.Encode(&b, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.entity.Serialize(w); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	b.WriteByte('\n')
	return b.Bytes()
}

// WritePublicKey writes the armored public key to dir/name and returns the path.
func (s *TestSigner) WritePublicKey(t testing.TB, dir, name string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, s.PublicKey(t), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
