package steps

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/kiln-build/kiln/protocol"
)

// Log receives a step's output one line at a time, without the newline.
type Log interface {
	Line(text string)
}

// Env is what a step sees of its build. The worker builds one per attempt and
// points Log at the running step before each Run.
type Env struct {
	Workspace string // fresh per attempt, absolute
	CacheDir  string // per worker, survives builds (git mirrors live here)
	Job       protocol.Job
	Log       Log
	Props     *Properties
	// SignRPM signs an rpm header and returns the OpenPGP signature; nil
	// leaves rpms unsigned. The signing agent's client provides it.
	SignRPM func(header []byte) ([]byte, error)
}

// Logf writes one formatted line to the step's log.
func (e *Env) Logf(format string, args ...any) {
	for line := range strings.SplitSeq(fmt.Sprintf(format, args...), "\n") {
		e.Log.Line(line)
	}
}

// ErrEscapesWorkspace is returned for a path that would leave the workspace.
var ErrEscapesWorkspace = errors.New("path escapes the workspace")

// Path resolves rel inside the workspace. Symlinks of the part that already
// exists are followed, so a link pointing out of the workspace is refused too.
func (e *Env) Path(rel string) (string, error) {
	return within(e.Workspace, rel)
}

func within(root, rel string) (string, error) {
	if filepath.IsAbs(rel) {
		return "", fmt.Errorf("%q: %w (absolute)", rel, ErrEscapesWorkspace)
	}
	p := filepath.Join(root, rel)
	if !inside(root, p) {
		return "", fmt.Errorf("%q: %w", rel, ErrEscapesWorkspace)
	}
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return "", fmt.Errorf("resolve workspace: %w", err)
	}
	// Follow links along the longest prefix that exists.
	existing, rest := p, ""
	for {
		real, err := filepath.EvalSymlinks(existing)
		if err == nil {
			if !inside(realRoot, real) {
				return "", fmt.Errorf("%q: %w (through a symlink)", rel, ErrEscapesWorkspace)
			}
			return filepath.Join(real, rest), nil
		}
		if existing == root {
			return "", fmt.Errorf("resolve %q: %w", rel, err)
		}
		rest = filepath.Join(filepath.Base(existing), rest)
		existing = filepath.Dir(existing)
	}
}

func inside(root, p string) bool {
	r, err := filepath.Rel(root, p)
	return err == nil && r != ".." && !strings.HasPrefix(r, "../")
}
