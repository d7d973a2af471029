// Package signing is Kiln's key agent: it holds OpenPGP v4 secret keys in
// memory and signs on request, so that neither a passphrase nor a private key
// ever has to reach a build host.
//
// An Agent owns the keys and the audit log. Clients reach it through a Client:
// over a Unix socket (DialSocket) for a signer beside the master, or over NATS
// request/reply (package signing/natsig) for a signer on another host. The
// helpers in this package (DetachSign, Clearsign, SignRPM, RPMSignFn) are what
// the repository publisher and the build steps call.
//
// The package knows nothing of NATS itself: transports only move the same
// framed messages (see wire.go) between a Client and Agent.Sign.
package signing
