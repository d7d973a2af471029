package builders

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/internal/kilntest"
)

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
			kilntest.Golden(t, strings.TrimSuffix(path, ".yaml")+".golden", []byte(err.Error()+"\n"))
		})
	}
}
