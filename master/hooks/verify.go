package hooks

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Verification failures; the handler answers all of them with 401.
var (
	ErrUnsigned      = errors.New("request is not signed")
	ErrBadSignature  = errors.New("signature does not match")
	ErrNotConfigured = errors.New("no secret configured for this provider")
)

// ProviderConfig holds one provider's shared secret.
type ProviderConfig struct {
	// Secret is the HMAC key (GitHub, Gitea, Bitbucket, generic) or the
	// token (GitLab) the sender is configured with.
	Secret string
	// AllowUnsigned accepts requests that carry no signature at all. A
	// request that does carry one is still verified when Secret is set.
	AllowUnsigned bool
}

// signature says where a provider puts its proof of origin and how to check it.
type signature struct {
	headers []string // first one present wins
	prefix  string   // "sha256=" for the X-Hub-Signature family
	token   bool     // the header carries the secret itself (GitLab)
}

// verify checks body against the request's signature. Every comparison is
// constant-time: the token is compared through its SHA-256 so its length
// does not leak either.
func (s signature) verify(cfg ProviderConfig, h http.Header, body []byte) error {
	var given string
	for _, name := range s.headers {
		if given = h.Get(name); given != "" {
			break
		}
	}
	switch {
	case given == "" && cfg.AllowUnsigned:
		return nil
	case given == "":
		return fmt.Errorf("%w: want header %s", ErrUnsigned, strings.Join(s.headers, " or "))
	case cfg.Secret == "" && cfg.AllowUnsigned:
		// Nothing to check against; the operator said unsigned is fine.
		return nil
	case cfg.Secret == "":
		return ErrNotConfigured
	}
	if s.token {
		a, b := sha256.Sum256([]byte(given)), sha256.Sum256([]byte(cfg.Secret))
		if subtle.ConstantTimeCompare(a[:], b[:]) != 1 {
			return fmt.Errorf("%w: wrong token", ErrBadSignature)
		}
		return nil
	}
	hexSig, ok := strings.CutPrefix(given, s.prefix)
	if !ok {
		return fmt.Errorf("%w: want %q prefix", ErrBadSignature, s.prefix)
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return fmt.Errorf("%w: not hex", ErrBadSignature)
	}
	mac := hmac.New(sha256.New, []byte(cfg.Secret))
	mac.Write(body)
	if !hmac.Equal(got, mac.Sum(nil)) {
		return ErrBadSignature
	}
	return nil
}
