package publish

import (
	"context"

	"github.com/kiln-build/kiln/repo"
	"github.com/kiln-build/kiln/signing"
)

// repoSigner lets the repository publisher sign through the signing agent.
// It lives here so that repo and signing stay independent of each other.
type repoSigner struct{ c signing.Client }

var _ repo.Signer = repoSigner{}

func (s repoSigner) Clearsign(ctx context.Context, key string, data []byte) ([]byte, error) {
	return signing.Clearsign(ctx, s.c, key, "InRelease", data)
}

func (s repoSigner) DetachSign(ctx context.Context, key string, data []byte) ([]byte, error) {
	return signing.DetachSign(ctx, s.c, key, "repository index", data)
}
