package signing

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"encoding"
	"fmt"
	"hash"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// sigConfig pins SHA-256: every tool Kiln targets verifies it, and rpm's
// header digests are SHA-256 too.
var sigConfig = &packet.Config{DefaultHash: crypto.SHA256}

// signOne makes the signature one request asks for with an unlocked key.
func signOne(priv *packet.PrivateKey, r Request) ([]byte, error) {
	switch r.Kind {
	case KindDetached:
		sig, err := binarySignature(priv, messageHash(r.Data))
		if err != nil {
			return nil, err
		}
		return armorSignature(sig)
	case KindBinary, KindRPMHeader:
		return binarySignature(priv, messageHash(r.Data))
	case KindSHA256State:
		h, err := restoreSHA256(r.Data)
		if err != nil {
			return nil, err
		}
		return binarySignature(priv, h)
	case KindClearsign:
		var out bytes.Buffer
		w, err := clearsign.Encode(&out, priv, sigConfig)
		if err != nil {
			return nil, fmt.Errorf("clearsign: %w", err)
		}
		if _, err := w.Write(r.Data); err != nil {
			return nil, fmt.Errorf("clearsign: %w", err)
		}
		if err := w.Close(); err != nil {
			return nil, fmt.Errorf("clearsign: %w", err)
		}
		out.WriteByte('\n')
		return out.Bytes(), nil
	}
	return nil, fmt.Errorf("%w: unknown kind %q", ErrBadRequest, r.Kind)
}

func messageHash(data []byte) hash.Hash {
	h := sha256.New()
	h.Write(data)
	return h
}

// restoreSHA256 rebuilds a client's hash state; sha256 states are a fixed
// small size, and UnmarshalBinary checks the magic and length.
func restoreSHA256(state []byte) (hash.Hash, error) {
	h := sha256.New()
	if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(state); err != nil {
		return nil, fmt.Errorf("%w: sha256 state: %v", ErrBadRequest, err)
	}
	return h, nil
}

// sha256Of returns the digest of the message behind a request, for the audit
// log; for a hash state it is the digest the client's data would have.
func sha256Of(r Request) ([32]byte, error) {
	var sum [32]byte
	if r.Kind != KindSHA256State {
		return sha256.Sum256(r.Data), nil
	}
	h, err := restoreSHA256(r.Data)
	if err != nil {
		return sum, err
	}
	copy(sum[:], h.Sum(nil))
	return sum, nil
}

// binarySignature finishes h (which holds the message) into a v4 binary
// signature packet.
func binarySignature(priv *packet.PrivateKey, h hash.Hash) ([]byte, error) {
	keyID := priv.KeyId
	sig := &packet.Signature{
		Version:      priv.Version,
		SigType:      packet.SigTypeBinary,
		PubKeyAlgo:   priv.PubKeyAlgo,
		Hash:         crypto.SHA256,
		CreationTime: time.Now(),
		IssuerKeyId:  &keyID,
	}
	if err := sig.Sign(h, priv, sigConfig); err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	var out bytes.Buffer
	if err := sig.Serialize(&out); err != nil {
		return nil, fmt.Errorf("serialize signature: %w", err)
	}
	return out.Bytes(), nil
}

func armorSignature(sig []byte) ([]byte, error) {
	var out bytes.Buffer
	w, err := armor.Encode(&out, openpgp.SignatureType, nil)
	if err != nil {
		return nil, fmt.Errorf("armor signature: %w", err)
	}
	if _, err := w.Write(sig); err != nil {
		return nil, fmt.Errorf("armor signature: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("armor signature: %w", err)
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}
