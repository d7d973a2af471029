package signing

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"testing"
	"time"
)

func TestAgentRefusesBadBatchesAndSignsNothing(t *testing.T) {
	a, _, audit := newTestAgent(t, Options{MaxBatchBytes: 1024}, KeyEd25519)
	ok := Request{Key: string(KeyEd25519), Kind: KindDetached, Name: "ok", Data: []byte("fine")}
	hdr := buildRPM(t, nil)
	hdr = hdr[headerOffset(t, hdr):]
	cases := []struct {
		name     string
		reqs     []Request
		sentinel error
	}{
		{"empty batch", nil, ErrBadRequest},
		{"unknown key", []Request{ok, {Key: "nosuch", Kind: KindDetached, Name: "x", Data: []byte("x")}}, ErrUnknownKey},
		{"over the size limit", []Request{ok, {Key: ok.Key, Kind: KindDetached, Name: "big", Data: make([]byte, 1100)}}, ErrTooLarge},
		{"unknown kind", []Request{ok, {Key: ok.Key, Kind: "shred", Name: "x"}}, ErrBadRequest},
		{"rpm header with payload", []Request{ok, {Key: ok.Key, Kind: KindRPMHeader, Name: "x", Data: hdr[:1000]}}, ErrBadRequest},
		{"rpm header garbage", []Request{{Key: ok.Key, Kind: KindRPMHeader, Name: "x", Data: []byte("not a header at all")}}, ErrBadRequest},
		{"bad hash state", []Request{{Key: ok.Key, Kind: KindSHA256State, Name: "x", Data: []byte("sha\x03short")}}, ErrBadRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resps, err := a.Sign(context.Background(), "test", tc.reqs)
			if !errors.Is(err, tc.sentinel) {
				t.Fatalf("err = %v, want %v", err, tc.sentinel)
			}
			if resps != nil {
				t.Errorf("got %d signatures from a refused batch", len(resps))
			}
		})
	}
	if n := len(audit.entries(t)); n != 0 {
		t.Errorf("%d audit entries after refused batches, want 0", n)
	}
}

func TestAgentBatchAuditsEverySignature(t *testing.T) {
	a, _, audit := newTestAgent(t, Options{}, KeyRSA4096, KeyEd25519)
	k, _ := a.Key(string(KeyEd25519))
	var reqs []Request
	for i := range 20 {
		key := string(KeyEd25519)
		if i%2 == 0 {
			key = k.Fingerprint // by fingerprint as well as by name
		}
		if i%5 == 0 {
			key = string(KeyRSA4096)
		}
		reqs = append(reqs, Request{Key: key, Kind: KindDetached, Name: "item", Data: bytes.Repeat([]byte{byte(i)}, i+1)})
	}
	resps, err := a.LocalClient("uid:1").Sign(context.Background(), reqs)
	if err != nil {
		t.Fatal(err)
	}
	entries := audit.entries(t)
	if len(resps) != len(reqs) || len(entries) != len(reqs) {
		t.Fatalf("%d requests, %d responses, %d audit entries", len(reqs), len(resps), len(entries))
	}
	rsa, _ := a.Key(string(KeyRSA4096))
	for i, e := range entries {
		sum := sha256.Sum256(reqs[i].Data)
		want := k.Fingerprint
		if i%5 == 0 {
			want = rsa.Fingerprint
		}
		if e.SHA256 != hex.EncodeToString(sum[:]) || e.Fingerprint != want || resps[i].Fingerprint != want || e.Requester != "uid:1" || e.Kind != KindDetached {
			t.Errorf("entry %d = %+v", i, e)
		}
		if !bytes.HasPrefix(resps[i].Signature, []byte("-----BEGIN PGP SIGNATURE-----")) {
			t.Errorf("response %d is not an armored signature", i)
		}
	}
}

func TestAgentTTLLocksAndUnlockRestores(t *testing.T) {
	a, _, _ := newTestAgent(t, Options{TTL: 300 * time.Millisecond}, KeyEd25519)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	req := []Request{{Key: string(KeyEd25519), Kind: KindBinary, Name: "x", Data: []byte("x")}}
	if _, err := a.Sign(ctx, "test", req); err != nil {
		t.Fatalf("before ttl: %v", err)
	}
	k, _ := a.Key(string(KeyEd25519))
	deadline := time.Now().Add(5 * time.Second)
	for {
		k.mu.RLock()
		zeroed := k.signer == nil
		k.mu.RUnlock()
		if zeroed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("key still in memory long after its ttl")
		}
		time.Sleep(20 * time.Millisecond)
	}
	start := time.Now()
	if _, err := a.Sign(ctx, "test", req); !errors.Is(err, ErrLocked) {
		t.Fatalf("after ttl: err = %v, want ErrLocked", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("a locked key took %v to answer", d)
	}
	if err := a.Unlock(string(KeyEd25519), []byte("wrong")); !errors.Is(err, ErrBadPassphrase) {
		t.Fatalf("unlock with a wrong passphrase: %v", err)
	}
	if err := a.Unlock(string(KeyEd25519), []byte(testPassphrase)); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Sign(ctx, "test", req); err != nil {
		t.Fatalf("after unlock: %v", err)
	}
}

func TestAuditLogFailureWithholdsSignatures(t *testing.T) {
	a, _, _ := newTestAgent(t, Options{}, KeyEd25519)
	a.audit = NewAuditLog(failingWriter{})
	_, err := a.Sign(context.Background(), "test", []Request{{Key: string(KeyEd25519), Kind: KindBinary, Name: "x", Data: []byte("x")}})
	if err == nil {
		t.Fatal("signatures returned although the audit log could not be written")
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }
