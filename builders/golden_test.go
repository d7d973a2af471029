package builders

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// TestErrorGolden loads every bad config under testdata/errors (and the
// conflicting config directory) and compares the full error report with its
// .golden file: messages, positions, key paths and hints.
func TestErrorGolden(t *testing.T) {
	cases, err := filepath.Glob("testdata/errors/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cases = append(cases, "testdata/merge/conflict")
	for _, path := range cases {
		name := strings.TrimSuffix(filepath.Base(path), ".yaml")
		t.Run(name, func(t *testing.T) {
			_, m, err := LoadMatrix(path)
			if err == nil {
				t.Fatalf("LoadMatrix(%s) = %d builders, want errors", path, len(m.Builders))
			}
			var errs Errors
			if !errors.As(err, &errs) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("LoadMatrix(%s) error %T is not Errors: %v", path, err, err)
			}
			for _, e := range errs {
				if e.File == "" {
					t.Errorf("error without position: %v", e)
				}
			}
			checkGolden(t, strings.TrimSuffix(path, ".yaml")+".golden", err.Error()+"\n")
		})
	}
}

func checkGolden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (go test -update rewrites it)\n--- got\n%s--- want\n%s", path, got, want)
	}
}
