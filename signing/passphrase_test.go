package signing

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// scripted is an interactive source that types the given answers in turn.
type scripted struct{ answers []string }

func (s *scripted) Interactive() bool { return true }
func (s *scripted) Passphrase(KeyStatus) ([]byte, error) {
	if len(s.answers) == 0 {
		return nil, errors.New("no more answers")
	}
	a := s.answers[0]
	s.answers = s.answers[1:]
	return []byte(a), nil
}

func TestUnlockWithSources(t *testing.T) {
	tk := keyFor(t, KeyEd25519)
	credDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(credDir, "ed"), []byte(testPassphrase+"\n"), 0o400); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		src      PassphraseSource
		ok       bool
		retries  int
		sentinel error
	}{
		{"fd, right", NewFDPassphrases(strings.NewReader(testPassphrase + "\n")), true, 0, nil},
		{"fd, no trailing newline", NewFDPassphrases(strings.NewReader(testPassphrase)), true, 0, nil},
		{"fd, wrong: no second try", NewFDPassphrases(strings.NewReader("wrong\n" + testPassphrase + "\n")), false, 0, ErrBadPassphrase},
		{"fd, empty", NewFDPassphrases(strings.NewReader("")), false, 0, nil},
		{"fd, too long", NewFDPassphrases(strings.NewReader(strings.Repeat("x", MaxPassphraseBytes+1) + "\n")), false, 0, nil},
		{"systemd credential", CredentialPassphrases{Dir: credDir}, true, 0, nil},
		{"systemd credential missing", CredentialPassphrases{Dir: t.TempDir()}, false, 0, os.ErrNotExist},
		{"tty, right on third try", &scripted{answers: []string{"a", "b", testPassphrase}}, true, 2, nil},
		{"tty, wrong three times", &scripted{answers: []string{"a", "b", "c", testPassphrase}}, false, 2, ErrBadPassphrase},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			k, err := LoadKey("ed", tk.secPath)
			if err != nil {
				t.Fatal(err)
			}
			var notes bytes.Buffer
			err = UnlockWith(k, tc.src, 0, &notes)
			if (err == nil) != tc.ok || k.Locked() == tc.ok {
				t.Fatalf("err = %v, locked = %v; want ok=%v", err, k.Locked(), tc.ok)
			}
			if tc.sentinel != nil && !errors.Is(err, tc.sentinel) {
				t.Errorf("err = %v, want %v", err, tc.sentinel)
			}
			if n := strings.Count(notes.String(), "Wrong passphrase"); n != tc.retries {
				t.Errorf("%d retry prompts, want %d:\n%s", n, tc.retries, notes.String())
			}
		})
	}
}
