package kilntest

import (
	"os"
	"os/exec"
	"testing"
)

// NeedTool skips the test when one of the named programs is not on PATH.
// Under CI (CI set to anything) it fails instead: CI installs the tools
// (scripts/deps.sh), and a silent skip there would hide a broken setup.
// It returns the path of names[0], for tests that run it.
func NeedTool(t testing.TB, names ...string) string {
	t.Helper()
	var first string
	for i, n := range names {
		p, err := exec.LookPath(n)
		if err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is required under CI: %v (scripts/deps.sh installs it)", n, err)
			}
			t.Skipf("%s not installed (scripts/deps.sh installs the test tools; under CI this fails): %v", n, err)
		}
		if i == 0 {
			first = p
		}
	}
	return first
}

// NeedRoot skips the test unless it runs as root, failing instead under CI
// as NeedTool does; why says what needs root.
func NeedRoot(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s: run as root (required under CI)", why)
	}
	t.Skipf("%s: run as root", why)
}
