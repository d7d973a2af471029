package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kiln-build/kiln/signing"
)

// passFD returns a pipe's read end holding text, as --passphrase-fd reads it.
func passFD(t *testing.T, text string) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteString(text); err != nil {
		t.Fatal(err)
	}
	w.Close()
	t.Cleanup(func() { r.Close() })
	return fmt.Sprint(r.Fd())
}

func kiln(ctx context.Context, args ...string) (string, error) {
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	return out.String(), err
}

func TestSignerCommands(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	if out, err := kiln(ctx, "signer", "genkey", "--name", "demo", "--type", "ed25519", "--out", dir, "--passphrase-fd", passFD(t, "")); err == nil || !strings.Contains(err.Error(), "--no-passphrase") {
		t.Fatalf("genkey with an empty passphrase: %v\n%s", err, out)
	}
	if out, err := kiln(ctx, "signer", "genkey", "--name", "demo", "--type", "ed25519", "--out", dir, "--passphrase-fd", passFD(t, "s3cret\n")); err != nil {
		t.Fatalf("genkey: %v\n%s", err, out)
	}
	sock := filepath.Join(dir, "signer.sock")
	key := filepath.Join(dir, "demo.sec.asc")

	out, err := kiln(ctx, "signer", "--key", key, "--socket", sock, "--passphrase-fd", passFD(t, "wrong\n"))
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 2 || !errors.Is(err, signing.ErrBadPassphrase) {
		t.Fatalf("signer with a wrong passphrase: err = %v\n%s", err, out)
	}

	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	var signerOut bytes.Buffer
	go func() {
		root := newRootCmd()
		root.SetOut(&signerOut)
		root.SetErr(&signerOut)
		root.SetArgs([]string{"signer", "--key", key, "--socket", sock, "--passphrase-fd", passFD(t, "s3cret\n")})
		done <- root.ExecuteContext(runCtx)
	}()
	waitSocket(t, sock, done)

	file := filepath.Join(dir, "Release")
	if err := os.WriteFile(file, []byte("Origin: Kiln\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		args []string
		want string
		ok   bool
	}{
		{[]string{"signer", "sign", "--socket", sock, "--key", "demo", file}, file + ".asc", true},
		{[]string{"signer", "sign", "--socket", sock, "--key", "nosuch", file}, "unknown signing key", false},
		{[]string{"signer", "pubkey", "--socket", sock, "demo"}, "BEGIN PGP PUBLIC KEY BLOCK", true},
		{[]string{"signer", "status", "--socket", sock}, "unlocked", true},
		{[]string{"signer", "unlock", "--socket", sock, "--passphrase-fd", passFD(t, "wrong\n"), "demo"}, "wrong passphrase", false},
		{[]string{"signer", "audit", "--socket", sock}, "detached  Release", true},
	}
	for _, s := range steps {
		out, err := kiln(ctx, s.args...)
		if (err == nil) != s.ok || !strings.Contains(out+fmt.Sprint(err), s.want) {
			t.Errorf("kiln %s: err = %v, want ok=%v and %q in:\n%s", strings.Join(s.args, " "), err, s.ok, s.want, out)
		}
	}
	out, err = kiln(ctx, "signer", "audit", "--log", filepath.Join(dir, "signer-audit.jsonl"), "--json")
	var e signing.AuditEntry
	if err != nil || json.Unmarshal([]byte(strings.SplitN(out, "\n", 2)[0]), &e) != nil || e.Item != "Release" || e.Requester != signing.UIDIdentity(uint32(os.Getuid())) {
		t.Errorf("audit --json: %v\n%s", err, out)
	}
	if gpgv, err := exec.LookPath("gpgv"); err == nil {
		pub, _ := kiln(ctx, "signer", "pubkey", "--socket", sock, "demo")
		keyring := filepath.Join(dir, "pub.asc")
		os.WriteFile(keyring, []byte(pub), 0o644)
		if out, err := exec.Command("gpg", "--dearmor", "--yes", "-o", keyring+".gpg", keyring).CombinedOutput(); err != nil {
			t.Fatalf("gpg --dearmor: %v\n%s", err, out)
		}
		if out, err := exec.Command(gpgv, "--keyring", keyring+".gpg", file+".asc", file).CombinedOutput(); err != nil {
			t.Errorf("gpgv rejected `kiln signer sign` output: %v\n%s", err, out)
		}
	}

	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("signer exited with %v\n%s", err, signerOut.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("signer did not stop")
	}
	if _, err := os.Stat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left behind after shutdown: %v", err)
	}
	if strings.Contains(signerOut.String(), "s3cret") {
		t.Error("passphrase in the signer's output")
	}
}

func waitSocket(t *testing.T, path string, done <-chan error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		select {
		case err := <-done:
			t.Fatalf("signer exited: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("signer socket did not appear")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
