package builders

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoad feeds arbitrary bytes to the loader and the expander: they may
// refuse the input but must never panic, and a refusal must be Errors with
// at least one entry.
func FuzzLoad(f *testing.F) {
	var seeds []string
	for _, pattern := range []string{"testdata/errors/*.yaml", "testdata/merge/*.yaml", "testdata/merge/*/*.yaml", "testdata/merge/*/*/*.yaml", "testdata/merge/*/*.yml", "../configs/*.yaml"} {
		files, err := filepath.Glob(pattern)
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, files...)
	}
	if len(seeds) < 20 {
		f.Fatalf("only %d seed files", len(seeds))
	}
	for _, s := range seeds {
		data, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := LoadBytes("fuzz.yaml", data)
		if err != nil {
			requireErrors(t, err)
			return
		}
		m, err := Expand(cfg)
		if err != nil {
			requireErrors(t, err)
			return
		}
		for _, b := range m.Builders {
			if _, ok := m.Builder(b.Name); !ok {
				t.Fatalf("builder %s not found by name", b.Name)
			}
		}
		m.LongestChain()
		for name := range m.components {
			m.Rebuilds(name)
		}
	})
}

func requireErrors(t *testing.T, err error) {
	t.Helper()
	errs, ok := err.(Errors)
	if !ok || len(errs) == 0 {
		t.Fatalf("error %T %v is not a non-empty Errors", err, err)
	}
	for _, e := range errs {
		if e.Error() == "" {
			t.Fatal("empty error message")
		}
	}
}
