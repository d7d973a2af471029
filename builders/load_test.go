package builders

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestConfigFiles(t *testing.T) {
	root := t.TempDir()
	for _, f := range []string{
		"farm/a.yaml", "farm/a/x.yaml", "farm/b.yml", "farm/notes.txt", "farm/yaml",
		"farm/.hidden.yaml", "farm/.git/config.yaml", "farm/sub/.skip/y.yaml",
		"single.yaml", "other.conf", "empty/readme.md",
	} {
		p := filepath.Join(root, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	at := func(names ...string) []string {
		for i, n := range names {
			names[i] = filepath.Join(root, n)
		}
		return names
	}
	tests := []struct {
		name    string
		path    string
		want    []string
		wantErr error
	}{
		// Path order, not WalkDir's: a.yaml sorts before the a directory.
		{"directory", "farm", at("farm/a.yaml", "farm/a/x.yaml", "farm/b.yml"), nil},
		{"file", "single.yaml", at("single.yaml"), nil},
		// A file named directly is read whatever its name.
		{"file of any name", "other.conf", at("other.conf"), nil},
		{"directory without config files", "empty", nil, ErrNoFiles},
		{"missing", "nothing", nil, fs.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(root, tt.path)
			got, err := ConfigFiles(path)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("ConfigFiles(%s) error %v, want %v", tt.path, err, tt.wantErr)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("ConfigFiles(%s) = %v, want %v", tt.path, got, tt.want)
			}
			if err != nil {
				return
			}
			// What a fingerprint covers must be what Load reads.
			cfg, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(cfg.Files, got) {
				t.Errorf("Load read %v, ConfigFiles says %v", cfg.Files, got)
			}
		})
	}
}
