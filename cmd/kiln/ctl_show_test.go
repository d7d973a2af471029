package main

import (
	"bytes"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/kiln-build/kiln/master/api"
)

// TestShowBuildNamesTheConditionThatSkippedAStep: `kiln ctl show` lists a
// step a when: condition skipped with its status and the condition, as the
// API and the build page do, on one line of the step table.
func TestShowBuildNamesTheConditionThatSkippedAStep(t *testing.T) {
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	skip := `skipped: when property.debian_version ~ ^11\. (was "12.4")`
	b := &api.BuildDetail{Build: &api.Build{ID: 7, Builder: "x@debian/bookworm/amd64", Status: "success", Created: at, Started: at, Ended: at.Add(time.Second),
		Steps: []api.Step{
			{Index: 0, Name: "version", Status: "success", Started: at, Ended: at.Add(time.Second)},
			{Index: 1, Name: "deb11", Status: "skipped", Summary: skip, Started: at.Add(time.Second), Ended: at.Add(time.Second)},
		}}}
	var out bytes.Buffer
	tw := tabwriter.NewWriter(&out, 0, 4, 2, ' ', 0)
	showBuild(tw, b)
	if err := tw.Flush(); err != nil {
		t.Fatal(err)
	}
	var row string
	for line := range strings.Lines(out.String()) {
		if strings.Contains(line, "deb11") {
			row = line
		}
	}
	if f := strings.Fields(row); len(f) < 4 || f[0] != "1" || f[1] != "deb11" || f[2] != "skipped" || !strings.HasSuffix(strings.TrimSpace(row), skip) {
		t.Errorf("step row %q, want index 1, deb11, skipped and the summary %q\n%s", row, skip, out.String())
	}
}
