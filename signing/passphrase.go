package signing

import (
	"bufio"
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
// descriptor (--passphrase-fd), in the order keys ask.
type FDPassphrases struct{ r *bufio.Reader }

// NewFDPassphrases wraps r (e.g. os.NewFile(fd, "passphrase-fd")).
func NewFDPassphrases(r io.Reader) *FDPassphrases { return &FDPassphrases{r: bufio.NewReader(r)} }

func (f *FDPassphrases) Interactive() bool { return false }

func (f *FDPassphrases) Passphrase(KeyStatus) ([]byte, error) {
	line, err := f.r.ReadBytes('\n')
	if err != nil && !(errors.Is(err, io.EOF) && len(line) > 0) {
		return nil, fmt.Errorf("read passphrase fd: %w", err)
	}
	out := bytes.Clone(bytes.TrimRight(line, "\r\n"))
	clear(line)
	return out, nil
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
