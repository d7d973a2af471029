package master_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kiln-build/kiln/internal/kilntest"
)

// The changes page lists the pollers GET /api/v1/pollers reports.
func TestChangesPageShowsPollers(t *testing.T) {
	url := servedRepo(t, "lib").URL
	f := startFarm(t, fmt.Sprintf(intakeYAML, "master:\n  poll: {interval: 1s}", "0",
		"  - {name: lib, git: "+url+"}", "  - {name: w1, credentials: w1.token, slots: 1}"))
	kilntest.WaitFor(t, 10*time.Second, "the first poll", func() bool {
		ps := f.api().Pollers()
		return len(ps) == 1 && ps[0].Refs == 1
	})
	code, body := f.get("/changes")
	for _, want := range []string{"Pollers <small>(1)</small>", "<code>" + url + "</code>", `<a href="/changes?component=lib">lib</a>`, "s ago</time>"} {
		if code != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("GET /changes: HTTP %d, missing %q in\n%s", code, want, body)
		}
	}
}
