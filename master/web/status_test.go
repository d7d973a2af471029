package web

import (
	"regexp"
	"slices"
	"testing"

	"github.com/kiln-build/kiln/protocol"
)

// TestStatusesMatchProtocol ties the pages to protocol.Statuses: each status
// the master or a worker can report is offered as a filter, is counted on the
// grid, and has a colour. A status added to protocol alone fails here rather
// than rendering as an uncoloured cell and a "bad query parameter" error.
func TestStatusesMatchProtocol(t *testing.T) {
	css, err := staticFS.ReadFile("static/kiln.css")
	if err != nil {
		t.Fatal(err)
	}
	coloured := map[string]bool{}
	for _, m := range regexp.MustCompile(`\.s-([a-z]+)\b`).FindAllSubmatch(css, -1) {
		coloured[string(m[1])] = true
	}
	for _, s := range protocol.Statuses {
		t.Run(s, func(t *testing.T) {
			st := Status(s)
			if n := countOf(Statuses, st); n != 1 {
				t.Errorf("web.Statuses holds %q %d times, want once", s, n)
			}
			if !coloured[s] {
				t.Errorf("static/kiln.css has no .s-%s rule", s)
			}
			if st.Finished() != protocol.Terminal(s) {
				t.Errorf("Finished() = %v, protocol.Terminal = %v", st.Finished(), protocol.Terminal(s))
			}
			if st.Finished() != slices.Contains(finishedStatuses, st) {
				t.Errorf("the builds page's history filter disagrees with Finished() = %v", st.Finished())
			}
		})
	}
	if len(Statuses) != len(protocol.Statuses) {
		t.Errorf("web.Statuses %v is not a reordering of protocol.Statuses %v", Statuses, protocol.Statuses)
	}
}

func countOf(list []Status, s Status) int {
	n := 0
	for _, v := range list {
		if v == s {
			n++
		}
	}
	return n
}
