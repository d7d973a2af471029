package repotest

import (
	"testing"

	"github.com/kiln-build/kiln/internal/kilntest"
)

// NeedTool skips when a real tool is missing, except under CI where the
// tool is part of the contract and its absence fails the test: it is
// kilntest.NeedTool, kept under this name for the package's callers.
func NeedTool(t testing.TB, names ...string) {
	t.Helper()
	kilntest.NeedTool(t, names...)
}
