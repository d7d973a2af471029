package master_test

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The changes page lists the pollers GET /api/v1/pollers reports.
func TestChangesPageShowsPollers(t *testing.T) {
	_, url := servedRepo(t, "lib")
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "farm.yaml")
	writeFile(t, cfgPath, fmt.Sprintf(intakeYAML, "master:\n  poll: {interval: 1s}", "0",
		"  - {name: lib, git: "+url+"}", "  - {name: w1, credentials: "+token(t, dir, "w1")+", slots: 1}"))
	f := startFarm(t, dir, cfgPath)
	waitFor(t, 10*time.Second, "the first poll", func() bool {
		ps := f.m.API().Pollers()
		return len(ps) == 1 && ps[0].Refs == 1
	})
	code, body := f.get("/changes")
	for _, want := range []string{"Pollers <small>(1)</small>", "<code>" + url + "</code>", `<a href="/changes?component=lib">lib</a>`, "s ago</time>"} {
		if code != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("GET /changes: HTTP %d, missing %q in\n%s", code, want, body)
		}
	}
}
