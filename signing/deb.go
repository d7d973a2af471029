package signing

import (
	"context"
	"crypto/sha256"
	"encoding"
	"fmt"
	"io"
)

// DebOriginSignFn returns a signer for nfpm's deb Signature.SignFn (method
// "debsign", type "origin"): an armored detached signature over
// debian-binary | control.tar | data.tar, the debsigs _gpgorigin member.
// The package is hashed here; only the SHA-256 state goes to the agent.
//
// Off by default in Kiln: apt and dpkg never check per-deb signatures, and
// lintian flags the extra member. Repository signatures are what apt checks.
func DebOriginSignFn(ctx context.Context, c Client, key, name string) func(io.Reader) ([]byte, error) {
	return func(r io.Reader) ([]byte, error) {
		h := sha256.New()
		if _, err := io.Copy(h, r); err != nil {
			return nil, fmt.Errorf("sign deb %s: read: %w", name, err)
		}
		state, err := h.(encoding.BinaryMarshaler).MarshalBinary()
		if err != nil {
			return nil, fmt.Errorf("sign deb %s: marshal sha256 state: %w", name, err)
		}
		sig, err := signSingle(ctx, c, Request{Key: key, Kind: KindSHA256State, Name: name + " _gpgorigin", Data: state})
		if err != nil {
			return nil, fmt.Errorf("sign deb %s: %w", name, err)
		}
		return armorSignature(sig)
	}
}
