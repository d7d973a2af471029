package signing

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// MinRSABits is the smallest RSA modulus the agent accepts; 2048-bit keys
// are being phased out by distributions' crypto policies.
const MinRSABits = 3072

// Key is one named signing key. The armored file content (encrypted, as on
// disk) stays in memory so the key can be unlocked again after a lock; the
// decrypted entity exists only while unlocked.
type Key struct {
	Name        string
	Path        string
	Fingerprint string // upper-case hex, as gpg prints it

	fileData  []byte
	publicASC []byte
	encrypted bool

	mu      sync.RWMutex
	signer  *packet.PrivateKey // nil while locked
	entity  *openpgp.Entity
	expires time.Time // zero: no --ttl
}

// ParseKeySpec splits a --key argument: "NAME=FILE", or FILE whose base name
// up to the first dot becomes the name ("prod.sec.asc" → "prod").
func ParseKeySpec(spec string) (name, path string) {
	if n, p, ok := strings.Cut(spec, "="); ok && n != "" && !strings.ContainsRune(n, '/') {
		return n, p
	}
	base := filepath.Base(spec)
	name, _, _ = strings.Cut(base, ".")
	return name, spec
}

// LoadKey reads an armored secret key file and checks that apt, dnf and rpm
// would accept its signatures. The key stays locked; call Unlock.
func LoadKey(name, path string) (*Key, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load key %q: %w", name, err)
	}
	k, err := parseKey(name, path, data)
	if err != nil {
		return nil, fmt.Errorf("load key %q from %s: %w", name, path, err)
	}
	return k, nil
}

func parseKey(name, path string, data []byte) (*Key, error) {
	ent, err := readSingleEntity(data)
	if err != nil {
		return nil, err
	}
	sk, err := signingKeyOf(ent)
	if err != nil {
		return nil, err
	}
	var pub bytes.Buffer
	w, err := armor.Encode(&pub, openpgp.PublicKeyType, nil)
	if err != nil {
		return nil, fmt.Errorf("armor public key: %w", err)
	}
	if err := ent.Serialize(w); err != nil {
		return nil, fmt.Errorf("serialize public key: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("armor public key: %w", err)
	}
	pub.WriteByte('\n')
	return &Key{
		Name:        name,
		Path:        path,
		Fingerprint: strings.ToUpper(hex.EncodeToString(ent.PrimaryKey.Fingerprint)),
		fileData:    data,
		publicASC:   pub.Bytes(),
		encrypted:   sk.Encrypted,
	}, nil
}

func readSingleEntity(data []byte) (*openpgp.Entity, error) {
	block, err := armor.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("not an armored OpenPGP key: %w", err)
	}
	if block.Type != openpgp.PrivateKeyType {
		return nil, fmt.Errorf("%w: armor type %q, want %q", ErrUnsupportedKey, block.Type, openpgp.PrivateKeyType)
	}
	el, err := openpgp.ReadKeyRing(block.Body)
	if err != nil {
		return nil, fmt.Errorf("parse OpenPGP key: %w", err)
	}
	if len(el) != 1 {
		return nil, fmt.Errorf("%w: file holds %d keys, want exactly one", ErrUnsupportedKey, len(el))
	}
	ent := el[0]
	if ent.PrivateKey == nil {
		return nil, fmt.Errorf("%w: file holds a public key only", ErrUnsupportedKey)
	}
	if v := ent.PrimaryKey.Version; v != 4 {
		return nil, fmt.Errorf("%w: OpenPGP v%d key; apt, dnf and rpm 4.18 reject v%d signatures, use a v4 key", ErrUnsupportedKey, v, v)
	}
	return ent, nil
}

// signingKeyOf returns the private key that signs for ent and checks its
// algorithm: RSA of at least MinRSABits, or EdDSA on Ed25519 in the v4
// ("legacy") encoding that gpg 2.2 and rpm 4.18 understand.
func signingKeyOf(ent *openpgp.Entity) (*packet.PrivateKey, error) {
	k, ok := ent.SigningKey(time.Now())
	if !ok || k.PrivateKey == nil {
		return nil, fmt.Errorf("%w: no usable signing key (expired, revoked or without a signing flag)", ErrUnsupportedKey)
	}
	pk := k.PublicKey
	switch pk.PubKeyAlgo {
	case packet.PubKeyAlgoRSA, packet.PubKeyAlgoRSASignOnly:
		bits, err := pk.BitLength()
		if err != nil {
			return nil, fmt.Errorf("read RSA key size: %w", err)
		}
		if bits < MinRSABits {
			return nil, fmt.Errorf("%w: RSA-%d key; at least RSA-%d is required", ErrUnsupportedKey, bits, MinRSABits)
		}
	case packet.PubKeyAlgoEdDSA:
		c, err := pk.Curve()
		if err != nil || c != packet.Curve25519 {
			return nil, fmt.Errorf("%w: EdDSA key on curve %q; only Ed25519 is supported", ErrUnsupportedKey, c)
		}
	case packet.PubKeyAlgoEd25519:
		return nil, fmt.Errorf("%w: Ed25519 key in the RFC 9580 encoding (algorithm 27), which gpg 2.2 and rpm 4.18 cannot verify; generate a v4 EdDSA key (kiln signer genkey --type ed25519)", ErrUnsupportedKey)
	default:
		return nil, fmt.Errorf("%w: public key algorithm %d; use RSA (≥%d bits) or Ed25519", ErrUnsupportedKey, pk.PubKeyAlgo, MinRSABits)
	}
	return k.PrivateKey, nil
}

// Encrypted reports whether the key file is passphrase-protected.
func (k *Key) Encrypted() bool { return k.encrypted }

// PublicKey returns the armored public key.
func (k *Key) PublicKey() []byte { return bytes.Clone(k.publicASC) }

// Locked reports whether the secret material is absent from memory.
func (k *Key) Locked() bool {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return !k.usable(time.Now())
}

func (k *Key) usable(now time.Time) bool {
	return k.signer != nil && (k.expires.IsZero() || now.Before(k.expires))
}

// lockIfExpired zeroes the key once its ttl has run out; it reports whether
// it locked.
func (k *Key) lockIfExpired(now time.Time) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.signer == nil || k.usable(now) {
		return false
	}
	zeroEntity(k.entity)
	k.entity, k.signer = nil, nil
	return true
}

// Unlock decrypts a fresh copy of the key with passphrase; with ttl > 0 the
// key counts as locked once ttl has passed. The caller should zero passphrase
// afterwards; Unlock keeps no reference to it.
func (k *Key) Unlock(passphrase []byte, ttl time.Duration) error {
	ent, err := readSingleEntity(k.fileData)
	if err != nil {
		return fmt.Errorf("unlock key %q: %w", k.Name, err)
	}
	sk, err := signingKeyOf(ent)
	if err != nil {
		return fmt.Errorf("unlock key %q: %w", k.Name, err)
	}
	if sk.Encrypted {
		if err := sk.Decrypt(passphrase); err != nil {
			zeroEntity(ent)
			return fmt.Errorf("unlock key %q: %w (%v)", k.Name, ErrBadPassphrase, err)
		}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.entity != nil {
		zeroEntity(k.entity)
	}
	k.entity, k.signer = ent, sk
	k.expires = time.Time{}
	if ttl > 0 {
		k.expires = time.Now().Add(ttl)
	}
	return nil
}

// Lock zeroes the secret material and drops it.
func (k *Key) Lock() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.entity != nil {
		zeroEntity(k.entity)
	}
	k.entity, k.signer = nil, nil
}

// withSigner runs f with the decrypted signing key held against a concurrent
// Lock, or returns ErrLocked at once.
func (k *Key) withSigner(f func(*packet.PrivateKey) error) error {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if !k.usable(time.Now()) {
		return fmt.Errorf("key %q: %w", k.Name, ErrLocked)
	}
	return f(k.signer)
}
