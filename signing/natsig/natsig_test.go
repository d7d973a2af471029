package natsig

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/eddsa"
	"github.com/google/rpmpack"
	"github.com/nats-io/nats.go"

	"github.com/kiln-build/kiln/internal/kilntest"
	"github.com/kiln-build/kiln/signing"
)

const (
	passphrase = "nats test passphrase 7f3c"
	prefix     = "kiln.signer.prod.sign"
)

// startNATS runs a server with the users docs/signing.md describes: the
// signer, two workers that may each ask for signatures under their own
// subject, an intruder with a worker's usual build permissions and a
// monitor that sees everything.
func startNATS(t *testing.T) *kilntest.NATSServer {
	t.Helper()
	inbox := []string{"_INBOX.>"}
	return kilntest.NATS(t,
		// No publishing but replies.
		kilntest.NATSUser{Name: "signer", Password: "s", DenyPublish: []string{">"}, Subscribe: []string{prefix + ".*"}, Reply: true},
		kilntest.NATSUser{Name: "worker1", Password: "w1", Publish: []string{prefix + ".worker1"}, Subscribe: inbox},
		kilntest.NATSUser{Name: "worker2", Password: "w2", Publish: []string{prefix + ".worker2"}, Subscribe: inbox},
		kilntest.NATSUser{Name: "intruder", Password: "i", Publish: []string{"kiln.builds.>"}, Subscribe: inbox},
		kilntest.NATSUser{Name: "monitor", Password: "m"},
	)
}

// connect logs in as user; the test itself checks what a refused
// publication does, so the client's own error reports stay quiet.
func connect(t *testing.T, s *kilntest.NATSServer, user, pass string) *nats.Conn {
	t.Helper()
	return s.Connect(user, pass, nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
}

// secretsOf decrypts the key file independently of the agent and returns
// the byte strings that must never leave it.
func secretsOf(t *testing.T, secASC []byte) [][]byte {
	t.Helper()
	el, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(secASC))
	if err != nil {
		t.Fatal(err)
	}
	ent := el[0]
	if err := ent.DecryptPrivateKeys([]byte(passphrase)); err != nil {
		t.Fatal(err)
	}
	seed := ent.PrivateKey.PrivateKey.(*eddsa.PrivateKey).D
	out := [][]byte{bytes.Clone(seed)}
	var plain bytes.Buffer
	if err := ent.PrivateKey.Serialize(&plain); err != nil {
		t.Fatal(err)
	}
	// The tail of the unencrypted secret-key packet is the secret MPIs.
	ser := plain.Bytes()
	out = append(out, ser[len(ser)-32:])
	// And the encrypted secret-key packet, which is nobody's business either.
	enc, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(secASC))
	if err != nil {
		t.Fatal(err)
	}
	var encPkt bytes.Buffer
	if err := enc[0].PrivateKey.Serialize(&encPkt); err != nil {
		t.Fatal(err)
	}
	ep := encPkt.Bytes()
	return append(out, ep[len(ep)-32:], []byte(passphrase))
}

// haystacks is a message plus every base64 or armored blob inside its JSON,
// decoded: key material would travel base64-encoded.
func haystacks(msg []byte) [][]byte {
	out := [][]byte{msg}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for _, e := range x {
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		case string:
			if b, err := base64.StdEncoding.DecodeString(x); err == nil {
				out = append(out, b)
				if blk, err := armor.Decode(bytes.NewReader(b)); err == nil {
					raw, _ := io.ReadAll(blk.Body)
					out = append(out, raw)
				}
			}
		}
	}
	var v any
	if json.Unmarshal(msg, &v) == nil {
		walk(v)
	}
	return out
}

type recorder struct {
	mu   sync.Mutex
	msgs []*nats.Msg
}

func (r *recorder) add(m *nats.Msg) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, m)
}

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) Bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Clone(l.b.Bytes())
}

func TestSigningOverNATS(t *testing.T) {
	srv := startNATS(t)
	dir := t.TempDir()
	gen, err := signing.GenerateKey("kiln nats test", "nats@kiln.invalid", signing.KeyEd25519, []byte(passphrase))
	if err != nil {
		t.Fatal(err)
	}
	secPath, _, err := gen.WriteKeyFiles(dir, "prod")
	if err != nil {
		t.Fatal(err)
	}
	key, err := signing.LoadKey("prod", secPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := signing.UnlockWith(key, signing.NewFDPassphrases(strings.NewReader(passphrase+"\n")), 0, io.Discard); err != nil {
		t.Fatal(err)
	}
	var audit, logs lockedBuf
	a, err := signing.NewAgent([]*signing.Key{key}, signing.Options{
		Audit:  signing.NewAuditLog(&audit),
		Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}

	rec := &recorder{}
	mon := connect(t, srv, "monitor", "m")
	if _, err := mon.Subscribe(">", rec.add); err != nil {
		t.Fatal(err)
	}
	if err := mon.Flush(); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, connect(t, srv, "signer", "s"), prefix, a, nil) }()
	defer func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	w1 := NewClient(connect(t, srv, "worker1", "w1"), prefix+".worker1")
	waitForResponder(t, w1)

	rctx, rcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer rcancel()
	sig, err := signing.DetachSign(rctx, w1, "prod", "Release", []byte("Origin: Kiln\n"))
	if err != nil {
		t.Fatal(err)
	}
	el, _ := openpgp.ReadArmoredKeyRing(bytes.NewReader(gen.Public))
	if _, err := openpgp.CheckArmoredDetachedSignature(el, bytes.NewReader([]byte("Origin: Kiln\n")), bytes.NewReader(sig), nil); err != nil {
		t.Errorf("signature made over NATS does not verify: %v", err)
	}
	if _, err := signing.Clearsign(rctx, w1, "prod", "InRelease", []byte("Origin: Kiln\n")); err != nil {
		t.Fatal(err)
	}
	rpm, err := rpmpack.NewRPM(rpmpack.RPMMetaData{Name: "n", Version: "1", Release: "1", Compressor: "gzip"})
	if err != nil {
		t.Fatal(err)
	}
	rpm.SetPGPSigner(signing.RPMSignFn(rctx, w1, "prod"))
	if err := rpm.Write(io.Discard); err != nil {
		t.Fatal(err)
	}
	// A batch bigger than NATS's max_payload is split, and all of it signed.
	var big []signing.Request
	for i := range 150 {
		big = append(big, signing.Request{Key: key.Fingerprint, Kind: signing.KindBinary, Name: fmt.Sprintf("f%d", i), Data: bytes.Repeat([]byte{byte(i)}, 10<<10)})
	}
	resps, err := w1.Sign(rctx, big)
	if err != nil || len(resps) != len(big) {
		t.Fatalf("big batch: %d responses, %v", len(resps), err)
	}
	if _, err := w1.Sign(rctx, []signing.Request{{Key: "nosuch", Kind: signing.KindDetached, Name: "x", Data: []byte("x")}}); !errors.Is(err, signing.ErrUnknownKey) {
		t.Errorf("unknown key over NATS: err = %v, want ErrUnknownKey", err)
	}
	if _, err := w1.Unlock(rctx, "prod", []byte(passphrase)); !errors.Is(err, signing.ErrDenied) {
		t.Errorf("unlock over NATS: err = %v, want ErrDenied", err)
	}

	entries, err := signing.ReadAudit(bytes.NewReader(audit.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	// detached + clearsign + the rpm's two signatures + the big batch
	if len(entries) != 4+len(big) {
		t.Errorf("%d audit entries, want %d", len(entries), 4+len(big))
	}
	for _, e := range entries {
		if e.Requester != "nats:worker1" {
			t.Errorf("audit requester = %q, want nats:worker1", e.Requester)
		}
	}

	t.Run("refused without permission", func(t *testing.T) {
		for _, tc := range []struct{ user, pass, subject string }{
			{"intruder", "i", prefix + ".intruder"},
			{"worker2", "w2", prefix + ".worker1"}, // posing as another worker
		} {
			c := NewClient(connect(t, srv, tc.user, tc.pass), tc.subject)
			dctx, dcancel := context.WithTimeout(context.Background(), 2*time.Second)
			_, err := signing.DetachSign(dctx, c, "prod", "x", []byte("x"))
			dcancel()
			if !errors.Is(err, signing.ErrDenied) || !strings.Contains(err.Error(), "may not publish on "+tc.subject) {
				t.Errorf("%s on %s: err = %v, want ErrDenied naming the subject", tc.user, tc.subject, err)
			}
		}
		after, _ := signing.ReadAudit(bytes.NewReader(audit.Bytes()))
		if len(after) != len(entries) {
			t.Errorf("refused clients got %d signatures", len(after)-len(entries))
		}
	})

	if err := mon.Flush(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	rec.mu.Lock()
	msgs := rec.msgs
	rec.mu.Unlock()
	var sawRequest, sawReply, sawCanary bool
	secrets := secretsOf(t, gen.Secret)
	for _, m := range msgs {
		sawRequest = sawRequest || strings.HasPrefix(m.Subject, prefix+".worker1")
		sawReply = sawReply || strings.HasPrefix(m.Subject, "_INBOX.")
		for _, hay := range haystacks(m.Data) {
			// The signed text travels base64-encoded: finding it shows the
			// decoding search would find key material too.
			sawCanary = sawCanary || bytes.Contains(hay, []byte("Origin: Kiln\n"))
			for i, s := range secrets {
				if bytes.Contains(hay, s) {
					t.Errorf("secret %d found in NATS message on %s", i, m.Subject)
				}
			}
		}
	}
	if !sawRequest || !sawReply || !sawCanary || len(msgs) < 10 {
		t.Fatalf("monitor recorded %d messages (request seen %v, reply seen %v, canary found %v): the search proves nothing", len(msgs), sawRequest, sawReply, sawCanary)
	}
	for i, s := range secrets {
		if bytes.Contains(logs.Bytes(), s) {
			t.Errorf("secret %d found in the agent's log", i)
		}
	}
	if len(logs.Bytes()) == 0 {
		t.Error("agent logged nothing; the log search proves nothing")
	}
}

// waitForResponder retries until the agent's subscription is live.
func waitForResponder(t *testing.T, c signing.Client) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := c.PublicKey(ctx, "prod")
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("signer not answering on NATS: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
