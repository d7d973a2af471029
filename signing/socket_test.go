package signing

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSocketModeAndPeerAllowlist(t *testing.T) {
	a, logs, audit := newTestAgent(t, Options{}, KeyEd25519)
	c, path := serveSocket(t, a, nil)
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 || st.Mode().Type() != os.ModeSocket {
		t.Errorf("socket mode = %v, want socket 0600", st.Mode())
	}
	req := []Request{{Key: string(KeyEd25519), Kind: KindBinary, Name: "x", Data: []byte("x")}}
	if _, err := c.Sign(context.Background(), req); err != nil {
		t.Fatalf("allowed uid: %v", err)
	}

	other := uint32(os.Getuid()) + 4242
	denied, _ := serveSocket(t, a, []uint32{other})
	_, err = denied.Sign(context.Background(), req)
	want := fmt.Sprintf("peer uid %d is not on the signer's allowlist", os.Getuid())
	if !errors.Is(err, ErrDenied) || !strings.Contains(err.Error(), want) {
		t.Fatalf("uid outside the allowlist: err = %v, want ErrDenied saying %q", err, want)
	}
	if n := len(audit.entries(t)); n != 1 {
		t.Errorf("%d signatures audited, want only the allowed one", n)
	}
	if !strings.Contains(logs.String(), "uid not on the allowlist") {
		t.Error("refused peer not logged")
	}
}

func TestListenSocketRefusesUnsafePaths(t *testing.T) {
	newDir := func(mode os.FileMode) string {
		d, err := os.MkdirTemp("", "kiln-sock-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(d) })
		if err := os.Chmod(d, mode); err != nil {
			t.Fatal(err)
		}
		return d
	}
	live := filepath.Join(newDir(0o700), "live.sock")
	ln, err := ListenSocket(live)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	regular := filepath.Join(newDir(0o700), "file")
	if err := os.WriteFile(regular, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, path, msg string }{
		{"world-writable dir", filepath.Join(newDir(0o777), "s.sock"), "must not be group- or world-writable"},
		{"group-writable dir", filepath.Join(newDir(0o770), "s.sock"), "must not be group- or world-writable"},
		{"existing regular file", regular, "exists and is not a socket"},
		{"live socket", live, "another signer is listening"},
		{"missing dir", "/nonexistent/kiln/s.sock", "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := ListenSocket(tc.path)
			if err == nil {
				l.Close()
				t.Fatal("ListenSocket accepted the path")
			}
			if !strings.Contains(err.Error(), tc.msg) || !strings.Contains(err.Error(), tc.path) {
				t.Errorf("error %q does not name the path and say %q", err, tc.msg)
			}
		})
	}
	if b, _ := os.ReadFile(regular); string(b) != "precious" {
		t.Error("existing file was touched")
	}

	// A socket left behind by a crashed signer is replaced.
	stale := filepath.Join(newDir(0o700), "stale.sock")
	old, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	old.SetUnlinkOnClose(false)
	old.Close()
	l, err := ListenSocket(stale)
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	l.Close()
}

func TestSocketOversizedAndMalformedMessages(t *testing.T) {
	a, _, audit := newTestAgent(t, Options{MaxBatchBytes: 4096}, KeyEd25519)
	_, path := serveSocket(t, a, nil)
	for _, tc := range []struct {
		name     string
		frame    []byte
		sentinel error
	}{
		{"length over the limit", binary.BigEndian.AppendUint32(nil, 1<<30), ErrTooLarge},
		{"not json", frame([]byte("{{{")), ErrBadRequest},
		{"wrong version", frame([]byte(`{"v":99,"op":"sign"}`)), ErrBadRequest},
		{"unknown op", frame([]byte(`{"v":1,"op":"format-disk"}`)), ErrBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("unix", path)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := conn.Write(tc.frame); err != nil {
				t.Fatal(err)
			}
			raw, err := readFrame(conn, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			var rep reply
			if err := json.Unmarshal(raw, &rep); err != nil || rep.Error == nil || !errors.Is(rep.Error.err(), tc.sentinel) {
				t.Errorf("reply %s, want error %v", raw, tc.sentinel)
			}
		})
	}
	if n := len(audit.entries(t)); n != 0 {
		t.Errorf("%d signatures made", n)
	}
}

func frame(b []byte) []byte { return append(binary.BigEndian.AppendUint32(nil, uint32(len(b))), b...) }

func TestUnlockAndStatusOverSocket(t *testing.T) {
	a, logs, _ := newTestAgent(t, Options{}, KeyEd25519)
	c, _ := serveSocket(t, a, nil)
	k, _ := a.Key(string(KeyEd25519))
	k.Lock()
	ctx := context.Background()
	st, err := c.Status(ctx)
	if err != nil || len(st) != 1 || !st[0].Locked || st[0].Fingerprint != k.Fingerprint {
		t.Fatalf("status = %+v, %v", st, err)
	}
	if _, err := DetachSign(ctx, c, k.Name, "x", []byte("x")); !errors.Is(err, ErrLocked) {
		t.Fatalf("locked key: err = %v", err)
	}
	if _, err := c.Unlock(ctx, k.Name, []byte("nope")); !errors.Is(err, ErrBadPassphrase) {
		t.Fatalf("wrong passphrase: err = %v", err)
	}
	st, err = c.Unlock(ctx, k.Name, []byte(testPassphrase))
	if err != nil || st[0].Locked {
		t.Fatalf("unlock: %+v, %v", st, err)
	}
	if _, err := DetachSign(ctx, c, k.Name, "x", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logs.String(), testPassphrase) || strings.Contains(logs.String(), "nope") {
		t.Error("a passphrase reached the log")
	}
}
