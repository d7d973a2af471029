package signing

import "errors"

// Sentinel errors callers branch on. They survive the trip over either
// transport: the wire carries a code that maps back to the same value.
var (
	// ErrLocked means the key exists but its secret material is not in
	// memory (never unlocked, or its --ttl ran out).
	ErrLocked = errors.New("signing key is locked")
	// ErrUnknownKey means no loaded key has the requested name or fingerprint.
	ErrUnknownKey = errors.New("unknown signing key")
	// ErrDenied means the requester is not allowed to use the signer.
	ErrDenied = errors.New("signing request denied")
	// ErrTooLarge means a request or batch is over the agent's size limit.
	ErrTooLarge = errors.New("signing request too large")
	// ErrBadRequest means a request is malformed (unknown kind, empty batch,
	// a header that is not an rpm header, ...).
	ErrBadRequest = errors.New("malformed signing request")
	// ErrBadPassphrase means the passphrase did not decrypt the key.
	ErrBadPassphrase = errors.New("wrong passphrase")
	// ErrUnsupportedKey means the key is of a version, algorithm or size
	// that the package tools (apt, dnf, rpm) would not accept.
	ErrUnsupportedKey = errors.New("unsupported signing key")
)
