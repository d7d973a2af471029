package repo

import "context"

// Signer signs with a named OpenPGP key held elsewhere (the signing agent).
// Both methods return ASCII-armored output.
type Signer interface {
	// Clearsign returns data wrapped in a cleartext signature (InRelease).
	Clearsign(ctx context.Context, key string, data []byte) ([]byte, error)
	// DetachSign returns an armored detached signature (Release.gpg, repomd.xml.asc).
	DetachSign(ctx context.Context, key string, data []byte) ([]byte, error)
}
