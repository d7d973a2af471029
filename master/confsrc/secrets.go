package confsrc

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/kiln-build/kiln/builders"
	"github.com/kiln-build/kiln/master/natsd"
	"github.com/kiln-build/kiln/protocol"
)

// ReadSecret resolves a credentials reference: "env:VAR" reads an
// environment variable, anything else is a file path (relative paths are
// relative to the config file's directory). Surrounding whitespace is
// dropped.
func ReadSecret(ref, configPath string) (string, error) {
	if ref == "" {
		return "", errors.New("no credentials reference")
	}
	if name, ok := strings.CutPrefix(ref, "env:"); ok {
		v := strings.TrimSpace(os.Getenv(name))
		if v == "" {
			return "", fmt.Errorf("environment variable %s is empty or unset", name)
		}
		return v, nil
	}
	p := ref
	if !filepath.IsAbs(p) && configPath != "" {
		base := configPath
		if st, err := os.Stat(configPath); err == nil && !st.IsDir() {
			base = filepath.Dir(configPath)
		}
		p = filepath.Join(base, p)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return "", fmt.Errorf("read secret: %w", err)
	}
	v := strings.TrimSpace(string(b))
	if v == "" {
		return "", fmt.Errorf("secret file %s is empty", p)
	}
	return v, nil
}

// Positioned makes a problem found outside builders point at the key in
// the config like builders' own errors.
func Positioned(cfg *builders.Config, path, msg string) error {
	pos, _ := cfg.Position(path)
	return builders.Errors{{File: pos.File, Line: pos.Line, Column: pos.Column, Path: path, Msg: msg}}
}

// NATSUsers is the embedded server's user list for cfg's workers, after
// the master's own user: each worker may use only its own subjects.
func NATSUsers(cfg *builders.Config, configPath string, master natsd.User) ([]natsd.User, error) {
	users := []natsd.User{master}
	for i, w := range cfg.Workers {
		token, err := ReadSecret(w.Credentials, configPath)
		if err != nil {
			return nil, Positioned(cfg, fmt.Sprintf("workers[%d].credentials", i), fmt.Sprintf("worker %s credentials: %v", w.Name, err))
		}
		pub, sub := protocol.WorkerPermissions(w.Name)
		users = append(users, natsd.User{Name: w.Name, Password: token, Publish: pub, Subscribe: sub})
	}
	return users, nil
}

// Tokens resolves the API tokens of the config's users by name; a
// reference that cannot be read is an error rather than a user silently
// locked out.
func Tokens(users []builders.User, configPath string) (map[string]string, error) {
	out := map[string]string{}
	for _, u := range users {
		if u.Token == "" {
			continue
		}
		tok, err := ReadSecret(u.Token, configPath)
		if err != nil {
			return nil, fmt.Errorf("user %s token: %w", u.Name, err)
		}
		out[u.Name] = tok
	}
	return out, nil
}
