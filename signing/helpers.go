package signing

import (
	"context"
	"fmt"
)

// signSingle sends a batch of one.
func signSingle(ctx context.Context, c Client, r Request) ([]byte, error) {
	resps, err := c.Sign(ctx, []Request{r})
	if err != nil {
		return nil, err
	}
	if len(resps) != 1 {
		return nil, fmt.Errorf("sign %s: signer answered %d items for 1", r.Name, len(resps))
	}
	return resps[0].Signature, nil
}

// DetachSign returns an armored detached signature over data (Release.gpg,
// repomd.xml.asc). name is what the audit log records.
func DetachSign(ctx context.Context, c Client, key, name string, data []byte) ([]byte, error) {
	return signSingle(ctx, c, Request{Key: key, Kind: KindDetached, Name: name, Data: data})
}

// Clearsign returns data wrapped in a cleartext signature (InRelease).
func Clearsign(ctx context.Context, c Client, key, name string, data []byte) ([]byte, error) {
	return signSingle(ctx, c, Request{Key: key, Kind: KindClearsign, Name: name, Data: data})
}
