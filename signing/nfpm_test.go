package signing

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/rpm"
)

// The nfpm step's path: nfpm builds the rpm and calls SignFn; rpm -K must
// accept the result.
func TestNFPMRPMSignedThroughAgent(t *testing.T) {
	a, _, audit := newTestAgent(t, Options{}, KeyRSA4096)
	c, _ := serveSocket(t, a, nil)
	rc := newRPMCheck(t, keyFor(t, KeyRSA4096).gen.Public)
	info := nfpm.WithDefaults(&nfpm.Info{
		Name: "kiln-nfpm", Arch: "amd64", Version: "2.0.1", Release: "1",
		Description: "test", License: "MIT", MTime: time.Unix(1700000000, 0),
	})
	info.RPM.Signature.SignFn = NFPMSignFn(context.Background(), c, string(KeyRSA4096))
	var buf bytes.Buffer
	if err := rpm.DefaultRPM.Package(info, &buf); err != nil {
		t.Fatal(err)
	}
	if out, ok := rc.check(t, buf.Bytes()); !ok {
		t.Fatalf("rpm -K rejected the nfpm rpm:\n%s", out)
	}
	if out, ok := rc.check(t, flip(buf.Bytes(), buf.Len()-50)); ok {
		t.Errorf("rpm -K accepted a changed payload:\n%s", out)
	}
	if n := len(audit.entries(t)); n != 2 {
		t.Errorf("%d signatures audited, want header and header+payload", n)
	}
}
