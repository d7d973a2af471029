package signing

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

const testPassphrase = "correct horse battery staple"

// testKey is a generated key pair on disk, shared by the package's tests:
// RSA-4096 generation takes seconds.
type testKey struct {
	typ     KeyType
	secPath string
	pubPath string
	gen     *GeneratedKey
}

var (
	testKeysOnce sync.Once
	testKeys     map[KeyType]*testKey
	testKeysErr  error
	testKeyDir   string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if testKeyDir != "" {
		os.RemoveAll(testKeyDir)
	}
	os.Exit(code)
}

func keyFor(t testing.TB, typ KeyType) *testKey {
	t.Helper()
	testKeysOnce.Do(func() {
		testKeyDir, testKeysErr = os.MkdirTemp("", "kiln-signing-keys-")
		if testKeysErr != nil {
			return
		}
		testKeys = map[KeyType]*testKey{}
		for _, typ := range []KeyType{KeyRSA4096, KeyEd25519} {
			// A low S2K count keeps the many unlocks in tests fast.
			g, err := generateKey("kiln-test-"+string(typ), "test@kiln.invalid", typ, []byte(testPassphrase), 65536)
			if err != nil {
				testKeysErr = err
				return
			}
			sec, pub, err := g.WriteKeyFiles(testKeyDir, string(typ))
			if err != nil {
				testKeysErr = err
				return
			}
			testKeys[typ] = &testKey{typ: typ, secPath: sec, pubPath: pub, gen: g}
		}
	})
	if testKeysErr != nil {
		t.Fatalf("generate test keys: %v", testKeysErr)
	}
	return testKeys[typ]
}

var keyTypes = []KeyType{KeyRSA4096, KeyEd25519}

// newTestAgent loads the named test keys, unlocked, with an in-memory audit
// log and a captured slog log.
func newTestAgent(t testing.TB, opts Options, typs ...KeyType) (*Agent, *syncBuffer, *syncBuffer) {
	t.Helper()
	var keys []*Key
	for _, typ := range typs {
		tk := keyFor(t, typ)
		k, err := LoadKey(string(typ), tk.secPath)
		if err != nil {
			t.Fatal(err)
		}
		if err := k.Unlock([]byte(testPassphrase), opts.TTL); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	audit := &syncBuffer{}
	logs := &syncBuffer{}
	opts.Audit = NewAuditLog(audit)
	opts.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a, err := NewAgent(keys, opts)
	if err != nil {
		t.Fatal(err)
	}
	return a, logs, audit
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) entries(t testing.TB) []AuditEntry {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := ReadAudit(bytes.NewReader(s.b.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// serveSocket runs a SocketServer for a on a fresh socket and returns a
// client; both stop when the test ends.
func serveSocket(t testing.TB, a *Agent, allow []uint32) (*RemoteClient, string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "kiln-sock-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "signer.sock")
	ln, err := ListenSocket(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv := &SocketServer{Agent: a, AllowUIDs: allow, Logger: a.log}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	c, err := DialSocket(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("socket server: %v", err)
		}
	})
	return c, path
}

func run(t testing.TB, name string, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}
