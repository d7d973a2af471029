package signing

import (
	"bytes"
	"context"
	"testing"
)

// FuzzRPMHeader feeds arbitrary bytes to everything that parses rpm headers
// from a client or a file: errors are fine, panics are not.
func FuzzRPMHeader(f *testing.F) {
	pkg := buildRPM(f, nil)
	f.Add(pkg)
	f.Add(pkg[rpmLeadSize:])
	f.Add(rpmHeaderMagic)
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = checkRPMHeader(b)
		_ = rpmItemName(b)
		if n, err := rpmHeaderLen(b); err == nil && n <= len(b) {
			_ = rpmItemName(b[:n])
		}
		_ = SignRPM(context.Background(), refusingClient{}, "k", bytes.NewReader(b), &bytes.Buffer{})
	})
}

type refusingClient struct{}

func (refusingClient) Sign(context.Context, []Request) ([]Response, error) { return nil, ErrDenied }
func (refusingClient) PublicKey(context.Context, string) ([]byte, error)   { return nil, ErrDenied }
func (refusingClient) Close() error                                        { return nil }
