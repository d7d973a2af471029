package signing

import (
	"bytes"
	"crypto"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/ProtonMail/go-crypto/openpgp/s2k"
)

// KeyType is what GenerateKey makes.
type KeyType string

const (
	KeyRSA4096 KeyType = "rsa4096"
	KeyEd25519 KeyType = "ed25519"
)

// GeneratedKey is an armored key pair.
type GeneratedKey struct {
	Secret      []byte // encrypted with the passphrase unless it was empty
	Public      []byte
	Fingerprint string
}

// GenerateKey makes a v4 signing key: RSA-4096, or EdDSA on Ed25519 in the
// v4 encoding (algorithm 22) that gpg 2.2 and rpm 4.18 verify. An empty
// passphrase leaves the secret key unencrypted (demos only).
func GenerateKey(name, email string, typ KeyType, passphrase []byte) (*GeneratedKey, error) {
	return generateKey(name, email, typ, passphrase, maxS2KCount)
}

// maxS2KCount is the strongest iterated S2K count OpenPGP can encode; the
// passphrase is typed once per signer start, so slow unlocking costs little.
const maxS2KCount = 65011712

func generateKey(name, email string, typ KeyType, passphrase []byte, s2kCount int) (*GeneratedKey, error) {
	cfg := &packet.Config{
		DefaultHash: crypto.SHA256,
		// Iterated+salted S2K, not Argon2: gpg 2.2 cannot read Argon2.
		S2KConfig: &s2k.Config{S2KMode: s2k.IteratedSaltedS2K, Hash: crypto.SHA256, S2KCount: s2kCount},
	}
	switch typ {
	case KeyRSA4096:
		cfg.Algorithm, cfg.RSABits = packet.PubKeyAlgoRSA, 4096
	case KeyEd25519:
		cfg.Algorithm, cfg.Curve = packet.PubKeyAlgoEdDSA, packet.Curve25519
	default:
		return nil, fmt.Errorf("generate key: unknown type %q (want %s or %s)", typ, KeyRSA4096, KeyEd25519)
	}
	ent, err := openpgp.NewEntity(name, "Kiln signing key", email, cfg)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	defer zeroEntity(ent)
	var pub, sec bytes.Buffer
	if err := armorTo(&pub, openpgp.PublicKeyType, ent.Serialize); err != nil {
		return nil, err
	}
	if len(passphrase) > 0 {
		if err := ent.EncryptPrivateKeys(passphrase, cfg); err != nil {
			return nil, fmt.Errorf("encrypt key: %w", err)
		}
	}
	if err := armorTo(&sec, openpgp.PrivateKeyType, func(w io.Writer) error {
		return ent.SerializePrivateWithoutSigning(w, nil)
	}); err != nil {
		return nil, err
	}
	k, err := parseKey(name, "", sec.Bytes())
	if err != nil {
		return nil, fmt.Errorf("generate key: check result: %w", err)
	}
	return &GeneratedKey{Secret: sec.Bytes(), Public: pub.Bytes(), Fingerprint: k.Fingerprint}, nil
}

func armorTo(out *bytes.Buffer, typ string, write func(io.Writer) error) error {
	w, err := armor.Encode(out, typ, nil)
	if err != nil {
		return fmt.Errorf("armor %s: %w", typ, err)
	}
	if err := write(w); err != nil {
		return fmt.Errorf("serialize %s: %w", typ, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("armor %s: %w", typ, err)
	}
	out.WriteByte('\n')
	return nil
}

// WriteKeyFiles writes NAME.sec.asc (0600) and NAME.pub.asc into dir,
// refusing to overwrite either.
func (g *GeneratedKey) WriteKeyFiles(dir, name string) (secPath, pubPath string, err error) {
	secPath = filepath.Join(dir, name+".sec.asc")
	pubPath = filepath.Join(dir, name+".pub.asc")
	for _, f := range []struct {
		path string
		data []byte
		mode os.FileMode
	}{{secPath, g.Secret, 0o600}, {pubPath, g.Public, 0o644}} {
		fh, err := os.OpenFile(f.path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, f.mode)
		if err != nil {
			return "", "", fmt.Errorf("write key: %w", err)
		}
		_, werr := fh.Write(f.data)
		if cerr := fh.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return "", "", fmt.Errorf("write key %s: %w", f.path, werr)
		}
	}
	return secPath, pubPath, nil
}
