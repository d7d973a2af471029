package signing

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/term"
)

// PassphraseSource hands over the passphrase for a key once. Interactive
// sources may be asked again after a wrong passphrase.
type PassphraseSource interface {
	Passphrase(k KeyStatus) ([]byte, error)
	Interactive() bool
}

// MaxPassphraseTries is how often a terminal user may retype a passphrase.
const MaxPassphraseTries = 3

// UnlockWith unlocks k from src: on a terminal it asks again after a wrong
// passphrase (up to MaxPassphraseTries); any other source gets one try. The
// passphrase is zeroed after each try.
func UnlockWith(k *Key, src PassphraseSource, ttl time.Duration, notify io.Writer) error {
	if !k.Encrypted() {
		return k.Unlock(nil, ttl)
	}
	info := KeyStatus{Name: k.Name, Fingerprint: k.Fingerprint, Locked: true}
	return AskPassphrase(info, src, notify, func(pass []byte) error { return k.Unlock(pass, ttl) })
}

// AskPassphrase gets passphrases from src and hands each to unlock until it
// succeeds, fails otherwise than by ErrBadPassphrase, or the tries run out.
// `kiln signer unlock` uses it with an unlock over the socket.
func AskPassphrase(k KeyStatus, src PassphraseSource, notify io.Writer, unlock func([]byte) error) error {
	for try := 1; ; try++ {
		pass, err := src.Passphrase(k)
		if err != nil {
			return fmt.Errorf("passphrase for key %q: %w", k.Name, err)
		}
		err = unlock(pass)
		clear(pass)
		if err == nil || !errors.Is(err, ErrBadPassphrase) || !src.Interactive() || try >= MaxPassphraseTries {
			return err
		}
		fmt.Fprintf(notify, "Wrong passphrase for key %q; try again (%d of %d).\n", k.Name, try+1, MaxPassphraseTries)
	}
}

// FDPassphrases reads one passphrase per line from an inherited file
// descriptor (--passphrase-fd), in the order keys ask. It reads a byte at a
// time into one fixed buffer: no read-ahead buffer or grown slice is left
// holding a copy of the passphrase.
type FDPassphrases struct{ r io.Reader }

// MaxPassphraseBytes bounds a passphrase read from a file descriptor.
const MaxPassphraseBytes = 1024

// NewFDPassphrases wraps r (e.g. os.NewFile(fd, "passphrase-fd")).
func NewFDPassphrases(r io.Reader) *FDPassphrases { return &FDPassphrases{r: r} }

func (f *FDPassphrases) Interactive() bool { return false }

func (f *FDPassphrases) Passphrase(KeyStatus) ([]byte, error) {
	buf := make([]byte, 0, MaxPassphraseBytes)
	var b [1]byte
	for {
		n, err := f.r.Read(b[:])
		if n == 1 {
			if b[0] == '\n' {
				break
			}
			if len(buf) == cap(buf) {
				clear(buf)
				return nil, fmt.Errorf("read passphrase fd: longer than %d bytes", MaxPassphraseBytes)
			}
			buf = append(buf, b[0])
			continue
		}
		if errors.Is(err, io.EOF) && len(buf) > 0 {
			break
		}
		if err != nil {
			clear(buf)
			return nil, fmt.Errorf("read passphrase fd: %w", err)
		}
	}
	b[0] = 0
	return bytes.TrimSuffix(buf, []byte("\r")), nil
}

// CredentialPassphrases reads $CREDENTIALS_DIRECTORY/<key name>, where systemd
// puts LoadCredential=/LoadCredentialEncrypted= secrets (a non-swappable
// ramfs readable by the service only).
type CredentialPassphrases struct{ Dir string }

func (c CredentialPassphrases) Interactive() bool { return false }

func (c CredentialPassphrases) Passphrase(k KeyStatus) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(c.Dir, k.Name))
	if err != nil {
		return nil, fmt.Errorf("read systemd credential: %w", err)
	}
	out := bytes.Clone(bytes.TrimRight(b, "\r\n"))
	clear(b)
	return out, nil
}

// TTYPassphrases prompts on the controlling terminal with echo off.
type TTYPassphrases struct {
	TTY *os.File // /dev/tty, or stdin when it is a terminal
}

func (t TTYPassphrases) Interactive() bool { return true }

func (t TTYPassphrases) Passphrase(k KeyStatus) ([]byte, error) {
	fmt.Fprintf(t.TTY, "Passphrase for key %q (%s): ", k.Name, k.Fingerprint)
	b, err := term.ReadPassword(int(t.TTY.Fd()))
	fmt.Fprintln(t.TTY)
	if err != nil {
		return nil, fmt.Errorf("read passphrase from terminal: %w", err)
	}
	return b, nil
}

// OpenTTY returns the controlling terminal, or an error if there is none.
func OpenTTY() (*os.File, error) {
	f, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("no terminal to ask for a passphrase (use --passphrase-fd or a systemd credential): %w", err)
	}
	if !term.IsTerminal(int(f.Fd())) {
		f.Close()
		return nil, fmt.Errorf("/dev/tty is not a terminal (use --passphrase-fd or a systemd credential)")
	}
	return f, nil
}
