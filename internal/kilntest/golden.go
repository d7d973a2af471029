package kilntest

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// update is the one -update flag of every test binary that imports the
// kit: a package defining its own would panic with "flag redefined".
var update = flag.Bool("update", false, "rewrite golden files with what the tests produce")

// Golden compares got with the file at path (relative to the package under
// test, normally under testdata/). With -update it writes got there
// instead, so a reviewer sees an intended change as a diff.
func Golden(t testing.TB, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update creates it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test -update rewrites it if the change is intended):\n%s", path, firstDifference(got, want))
	}
}

// firstDifference shows the first line that differs with some lines
// around it: golden files are whole pages, and the full text would drown
// the change.
func firstDifference(got, want []byte) string {
	g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	i := 0
	for i < len(g) && i < len(w) && g[i] == w[i] {
		i++
	}
	excerpt := func(lines []string) string {
		var b strings.Builder
		for n := max(0, i-2); n < min(len(lines), i+3); n++ {
			mark := " "
			if n == i {
				mark = ">"
			}
			fmt.Fprintf(&b, "%s%5d| %s\n", mark, n+1, lines[n])
		}
		if i >= len(lines) {
			fmt.Fprintf(&b, ">%5d| (end of file)\n", len(lines)+1)
		}
		return b.String()
	}
	return fmt.Sprintf("first difference at line %d (got %d lines, want %d)\n--- got\n%s--- want\n%s", i+1, len(g), len(w), excerpt(g), excerpt(w))
}
