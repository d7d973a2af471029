package kilntest

import (
	"testing"
	"time"
)

// WaitFor polls cond until it holds and fails the test when timeout
// passes first; what completes "timed out waiting for ...". Tests poll
// because what they wait for (a build finishing, a worker connecting)
// happens in goroutines they do not own.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
