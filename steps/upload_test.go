package steps

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/protocol"
)

func TestUpload(t *testing.T) {
	tests := []struct {
		name    string
		format  string
		globs   []string
		files   []string // in the workspace; nil: two .debs and notes.txt
		want    []string
		wantErr error
	}{
		{"globs, deduplicated and sorted", "", []string{"dist/*.deb", "dist/b_1.0_amd64.deb", "*.txt"}, nil, []string{"dist/a_1.0_amd64.deb", "dist/b_1.0_amd64.deb", "notes.txt"}, nil},
		{"property in glob", "", []string{"dist/${prop.component}_*"}, nil, []string{"dist/a_1.0_amd64.deb"}, nil},
		{"parent escape", "", []string{"../*"}, nil, nil, ErrEscapesWorkspace},
		{"absolute path", "", []string{"/etc/passwd"}, nil, nil, ErrEscapesWorkspace},
		{"symlink out of the workspace", "", []string{"leak/*"}, nil, nil, ErrEscapesWorkspace},
		{"nothing matched", "", []string{"dist/*.rpm"}, nil, nil, ErrNoArtifacts},
		{"format's packages by default", "apt", nil, nil, []string{"dist/a_1.0_amd64.deb", "dist/b_1.0_amd64.deb"}, nil},
		{"default finds no rpm", "yum", nil, nil, nil, ErrNoArtifacts},
		{"a Debian upload's records kept with its packages", "apt", nil, []string{"dist/a_1.0_amd64.deb", "dist/b_1.0_amd64.deb", "notes.txt", "dist/a_1.0_amd64.changes", "dist/a_1.0_amd64.buildinfo"}, []string{"dist/a_1.0_amd64.buildinfo", "dist/a_1.0_amd64.changes", "dist/a_1.0_amd64.deb", "dist/b_1.0_amd64.deb"}, nil},
		{"records only with the default globs", "apt", []string{"dist/*.deb"}, []string{"dist/a_1.0_amd64.deb", "dist/b_1.0_amd64.deb", "notes.txt", "dist/a_1.0_amd64.changes"}, []string{"dist/a_1.0_amd64.deb", "dist/b_1.0_amd64.deb"}, nil},
		{"records without packages are not a build", "apt", nil, []string{"dist/a_1.0_amd64.changes"}, nil, ErrNoArtifacts},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, _ := newTestEnv(t, protocol.Job{Component: "a", Format: tt.format})
			files := tt.files
			if files == nil {
				files = []string{"dist/a_1.0_amd64.deb", "dist/b_1.0_amd64.deb", "notes.txt"}
			}
			for _, f := range files {
				writeFile(t, filepath.Join(env.Workspace, f), f)
			}
			outside := t.TempDir()
			writeFile(t, filepath.Join(outside, "secret"), "x")
			if err := os.Symlink(outside, filepath.Join(env.Workspace, "leak")); err != nil {
				t.Fatal(err)
			}
			out, err := Run(context.Background(), env, protocol.Step{Type: "upload", Artifacts: tt.globs})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			var got []string
			for _, f := range out.Artifacts {
				got = append(got, f.Name)
				if f.Path != filepath.Join(env.Workspace, f.Name) {
					t.Errorf("%s read from %s", f.Name, f.Path)
				}
			}
			if len(got) != len(tt.want) {
				t.Fatalf("artifacts %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("artifacts %v, want %v", got, tt.want)
				}
			}
		})
	}
}

// The default upload takes a source package whole: the .dsc and what it
// lists, from its own directory; a .dsc listing a missing file fails the
// step, naming it.
func TestUploadSourcePackage(t *testing.T) {
	const dsc = "Source: hello\nVersion: 1.0\nFiles:\n 0123 10 hello_1.0.tar.xz\nChecksums-Sha256:\n 4567 10 hello_1.0.tar.xz\n"
	env, _ := newTestEnv(t, protocol.Job{Format: "apt"})
	writeFile(t, filepath.Join(env.Workspace, "dist/hello_1.0_all.deb"), "deb")
	writeFile(t, filepath.Join(env.Workspace, "dist/hello_1.0.dsc"), dsc)
	o, err := Upload{}.Run(t.Context(), env, protocol.Step{})
	if err == nil || !strings.Contains(o.Summary, "hello_1.0.tar.xz") {
		t.Fatalf("a .dsc whose tarball is missing: %v (%s)", err, o.Summary)
	}
	writeFile(t, filepath.Join(env.Workspace, "dist/hello_1.0.tar.xz"), "0123456789")
	o, err = Upload{}.Run(t.Context(), env, protocol.Step{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, a := range o.Artifacts {
		names = append(names, a.Name)
	}
	if want := []string{"dist/hello_1.0.dsc", "dist/hello_1.0.tar.xz", "dist/hello_1.0_all.deb"}; !slices.Equal(names, want) {
		t.Errorf("uploaded %v, want %v", names, want)
	}
}
