package signing

import (
	"context"
	"fmt"
)

// Kind is what sort of signature a Request asks for.
type Kind string

const (
	// KindDetached is an armored detached signature over Data
	// (Release.gpg, repomd.xml.asc, FILE.asc).
	KindDetached Kind = "detached"
	// KindBinary is a binary (unarmored) detached signature over Data, as
	// debsigs' _gpgorigin member wants.
	KindBinary Kind = "binary"
	// KindClearsign wraps Data (text) in a cleartext signature (apt InRelease).
	KindClearsign Kind = "clearsign"
	// KindRPMHeader is a binary v4 signature over an rpm main header; Data
	// must be exactly one header structure, never the payload.
	KindRPMHeader Kind = "rpm-header"
	// KindSHA256State is a binary signature whose message the client hashed
	// itself: Data is a marshalled crypto/sha256 state (encoding.BinaryMarshaler)
	// after writing the message. It lets rpmpack's header+payload signature be
	// made without the payload crossing the wire.
	KindSHA256State Kind = "sha256-state"
)

func (k Kind) valid() bool {
	switch k {
	case KindDetached, KindBinary, KindClearsign, KindRPMHeader, KindSHA256State:
		return true
	}
	return false
}

// Request is one item of a signing batch.
type Request struct {
	// Key is a key name (as given to the agent) or a full fingerprint in hex.
	Key  string `json:"key"`
	Kind Kind   `json:"kind"`
	// Name says what is signed (a file name, "InRelease", "foo-1.0.rpm
	// header"); it goes to the audit log only.
	Name string `json:"name"`
	Data []byte `json:"data"`
}

// Response is the answer to the Request at the same index of a batch.
type Response struct {
	Signature []byte `json:"signature"`
	// Fingerprint is the hex fingerprint of the key that signed.
	Fingerprint string `json:"fingerprint"`
}

// Client is what master and workers use to reach a signer, whatever the
// transport. A batch is all-or-nothing: if any item is refused, no item is
// signed.
type Client interface {
	Sign(ctx context.Context, reqs []Request) ([]Response, error)
	// PublicKey returns the armored public key of the named key.
	PublicKey(ctx context.Context, key string) ([]byte, error)
	Close() error
}

// Identity names who asked for a signature, as the transport authenticated
// it: a Unix uid or a NATS user.
type Identity string

// UIDIdentity is the identity of a Unix-socket peer.
func UIDIdentity(uid uint32) Identity { return Identity(fmt.Sprintf("uid:%d", uid)) }

// NATSIdentity is the identity of a NATS client, from the subject its
// permissions let it publish on.
func NATSIdentity(user string) Identity { return Identity("nats:" + user) }
