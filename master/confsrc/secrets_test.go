package confsrc

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadSecret(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "farm.yaml")
	for name, content := range map[string]string{"farm.yaml": "{}", "tok": "  s3cret\n", "empty": "\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("KILN_TEST_SECRET", " from-env ")
	t.Setenv("KILN_TEST_BLANK", "")
	for _, tc := range []struct {
		ref, configPath, want, fails string
	}{
		{"env:KILN_TEST_SECRET", cfg, "from-env", ""},
		{"env:KILN_TEST_BLANK", cfg, "", "KILN_TEST_BLANK is empty or unset"},
		{"tok", cfg, "s3cret", ""}, // relative to the config file's directory
		{"tok", dir, "s3cret", ""}, // or to a config directory
		{filepath.Join(dir, "tok"), "", "s3cret", ""},
		{"empty", cfg, "", "is empty"},
		{"missing", cfg, "", "read secret"},
		{"", cfg, "", "no credentials reference"},
	} {
		got, err := ReadSecret(tc.ref, tc.configPath)
		switch {
		case tc.fails != "" && (err == nil || !strings.Contains(err.Error(), tc.fails)):
			t.Errorf("ReadSecret(%q): %q, %v; want an error saying %q", tc.ref, got, err, tc.fails)
		case tc.fails == "" && (err != nil || got != tc.want):
			t.Errorf("ReadSecret(%q) = %q, %v; want %q", tc.ref, got, err, tc.want)
		}
	}
}
