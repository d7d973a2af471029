package steps

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/kiln-build/kiln/protocol"
)

type recLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *recLog) Line(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, s)
}

func (l *recLog) has(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.ContainsFunc(l.lines, func(x string) bool { return strings.Contains(x, s) })
}

func (l *recLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

func newTestEnv(t *testing.T, job protocol.Job) (*Env, *recLog) {
	t.Helper()
	log := &recLog{}
	return &Env{
		Workspace: t.TempDir(),
		CacheDir:  t.TempDir(),
		Job:       job,
		Log:       log,
		Props:     NewProperties(job, "w1"),
	}, log
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
