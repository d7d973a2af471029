package repotest

import (
	"os"
	"os/exec"
	"testing"
)

// NeedTool skips when a real tool is missing, except under CI where the
// tool is part of the contract and its absence fails the test.
func NeedTool(t testing.TB, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is required under CI: %v", n, err)
			}
			t.Skipf("%s not installed (apt-get install apt-utils rpm dnf createrepo-c): %v", n, err)
		}
	}
}
