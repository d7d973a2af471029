package api

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/kiln-build/kiln/protocol"
)

// TestCachedBuildListIsWhatJSONEncodingGives: the cache must not change a
// byte of the answer, on a miss or a hit, for finished and live builds.
func TestCachedBuildListIsWhatJSONEncodingGives(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 4, 0, 0, 0, time.UTC)
	done := &Build{ID: 9, Builder: "a@d/v/x", Status: protocol.StatusSuccess, Created: t0, Ended: t0,
		Properties: map[string]string{"version": "1.0 <&>"}, Artifacts: []Artifact{{Name: "a.deb", Size: 3, SHA256: "ab"}},
		Steps: []Step{{Index: 0, Name: "build", Status: protocol.StatusSuccess}}}
	live := &Build{ID: 10, Builder: "a@d/v/x", Status: protocol.StatusRunning, Created: t0}
	var c finishedJSON
	for _, tc := range []struct {
		name  string
		list  []*Build
		total int
	}{
		{"empty", nil, 0},
		{"miss", []*Build{live, done}, 7},
		{"hit", []*Build{live, done}, 7},
	} {
		want := httptest.NewRecorder()
		list := tc.list
		if list == nil {
			list = []*Build{}
		}
		writeJSON(want, 200, BuildList{Builds: list, Total: tc.total})
		got := httptest.NewRecorder()
		if err := c.writeBuildList(got, tc.list, tc.total); err != nil {
			t.Fatal(err)
		}
		if got.Body.String() != want.Body.String() {
			t.Errorf("%s:\n%s\nwant\n%s", tc.name, got.Body, want.Body)
		}
	}
	if _, ok := c.m[live.ID]; ok {
		t.Error("a running build was cached")
	}
}
