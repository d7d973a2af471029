package signing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// The wire format is one JSON object per message. The Unix socket frames
// messages with a 4-byte big-endian length; NATS messages are frames already.
// Version lets a newer agent tell an older client apart.
const wireVersion = 1

type op string

const (
	opSign   op = "sign"
	opPubKey op = "pubkey"
	opUnlock op = "unlock"
	opStatus op = "status"
)

type envelope struct {
	Version    int       `json:"v"`
	Op         op        `json:"op"`
	Requests   []Request `json:"requests,omitempty"`
	Key        string    `json:"key,omitempty"`
	Passphrase []byte    `json:"passphrase,omitempty"`
}

type reply struct {
	Responses []Response  `json:"responses,omitempty"`
	PublicKey []byte      `json:"public_key,omitempty"`
	Keys      []KeyStatus `json:"keys,omitempty"`
	Error     *wireError  `json:"error,omitempty"`
}

// KeyStatus is what `kiln signer status` shows for one key.
type KeyStatus struct {
	Name        string `json:"name"`
	Fingerprint string `json:"fingerprint"`
	Locked      bool   `json:"locked"`
}

type wireError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

var errorCodes = map[string]error{
	"locked":         ErrLocked,
	"unknown-key":    ErrUnknownKey,
	"denied":         ErrDenied,
	"too-large":      ErrTooLarge,
	"bad-request":    ErrBadRequest,
	"bad-passphrase": ErrBadPassphrase,
}

func toWireError(err error) *wireError {
	for code, sentinel := range errorCodes {
		if errors.Is(err, sentinel) {
			return &wireError{Code: code, Message: err.Error()}
		}
	}
	return &wireError{Code: "internal", Message: err.Error()}
}

// remoteError keeps the agent's message and still matches the sentinel with
// errors.Is.
type remoteError struct {
	msg      string
	sentinel error
}

func (e *remoteError) Error() string { return "signer: " + e.msg }
func (e *remoteError) Unwrap() error { return e.sentinel }

func (w *wireError) err() error {
	return &remoteError{msg: w.Message, sentinel: errorCodes[w.Code]}
}

// Handle answers one encoded message from an authenticated requester. admin
// allows unlock and status, which only the Unix socket offers: a passphrase
// must never travel over NATS.
func (a *Agent) Handle(ctx context.Context, who Identity, msg []byte, admin bool) []byte {
	rep := a.handle(ctx, who, msg, admin)
	out, err := json.Marshal(rep)
	if err != nil {
		out, _ = json.Marshal(reply{Error: toWireError(fmt.Errorf("encode reply: %w", err))})
	}
	return out
}

func (a *Agent) handle(ctx context.Context, who Identity, msg []byte, admin bool) reply {
	if len(msg) > a.MaxMessageBytes() {
		return reply{Error: toWireError(fmt.Errorf("%w: message of %d bytes, limit %d", ErrTooLarge, len(msg), a.MaxMessageBytes()))}
	}
	var env envelope
	if err := json.Unmarshal(msg, &env); err != nil {
		return reply{Error: toWireError(fmt.Errorf("%w: %v", ErrBadRequest, err))}
	}
	defer clear(env.Passphrase)
	if env.Version != wireVersion {
		return reply{Error: toWireError(fmt.Errorf("%w: protocol version %d, agent speaks %d", ErrBadRequest, env.Version, wireVersion))}
	}
	switch env.Op {
	case opSign:
		resps, err := a.Sign(ctx, who, env.Requests)
		if err != nil {
			return reply{Error: toWireError(err)}
		}
		return reply{Responses: resps}
	case opPubKey:
		pub, err := a.PublicKey(env.Key)
		if err != nil {
			return reply{Error: toWireError(err)}
		}
		return reply{PublicKey: pub}
	case opUnlock, opStatus:
		if !admin {
			return reply{Error: toWireError(fmt.Errorf("%w: %s is only offered on the Unix socket", ErrDenied, env.Op))}
		}
		if env.Op == opUnlock {
			if err := a.Unlock(env.Key, env.Passphrase); err != nil {
				return reply{Error: toWireError(err)}
			}
		}
		return reply{Keys: a.status()}
	}
	return reply{Error: toWireError(fmt.Errorf("%w: unknown operation %q", ErrBadRequest, env.Op))}
}

// MaxMessageBytes bounds an encoded message: the batch limit after base64
// (4/3) plus room for names and JSON.
func (a *Agent) MaxMessageBytes() int { return a.maxBatch/3*4 + 1<<20 }

func (a *Agent) status() []KeyStatus {
	out := make([]KeyStatus, len(a.keys))
	for i, k := range a.keys {
		out[i] = KeyStatus{Name: k.Name, Fingerprint: k.Fingerprint, Locked: k.Locked()}
	}
	return out
}

func errorReply(err error) []byte {
	out, _ := json.Marshal(reply{Error: toWireError(err)})
	return out
}
