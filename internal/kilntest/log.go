package kilntest

import (
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
)

// Logger logs through t.Log, so a component's log shows up with the test
// that failed (and with -v), not as noise from a whole package. Records at
// Info and above are kept; set KILN_TEST_LOG for Debug too.
func Logger(t testing.TB) *slog.Logger {
	w := &testWriter{t: t}
	// Goroutines of a component can outlive the test by a little; t.Log
	// after the test has finished panics, so the writer goes quiet first.
	t.Cleanup(w.close)
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level(), ReplaceAttr: shortTime}))
}

// QuietLogger discards everything, for benchmarks and tests whose
// component logs are no help; set KILN_TEST_LOG to see them on stderr.
func QuietLogger() *slog.Logger {
	if os.Getenv("KILN_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func level() slog.Level {
	if os.Getenv("KILN_TEST_LOG") != "" {
		return slog.LevelDebug
	}
	return slog.LevelInfo
}

// shortTime keeps the clock time only: a test's log spans seconds.
func shortTime(groups []string, a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey && len(groups) == 0 {
		return slog.String(slog.TimeKey, a.Value.Time().Format("15:04:05.000"))
	}
	return a
}

type testWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

// Write gets one whole record from the handler each time.
func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}

func (w *testWriter) close() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}
