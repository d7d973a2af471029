package pkgmeta_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/internal/kilntest"
	"github.com/kiln-build/kiln/repo/internal/repotest"
	"github.com/kiln-build/kiln/repo/pkgmeta"
)

func TestReadDebCompressions(t *testing.T) {
	for _, comp := range []string{"gzip", "xz", "zstd", "none"} {
		t.Run(comp, func(t *testing.T) {
			dir := t.TempDir()
			path := repotest.BuildDeb(t, dir, repotest.Deb{Name: "libgrace1", Source: "libgrace (1.2-1)", Version: "1:1.2-1", Arch: "amd64", Depends: "libc6 (>= 2.36)", Compression: comp})
			p, err := pkgmeta.ReadDeb(path)
			if err != nil {
				t.Fatal(err)
			}
			if p.Name != "libgrace1" || p.Version != "1:1.2-1" || p.Epoch != 1 || p.Arch != "amd64" || p.Source != "libgrace" {
				t.Errorf("got %+v", p)
			}
			if p.FileName != "libgrace1_1.2-1_amd64.deb" {
				t.Errorf("file name %q", p.FileName)
			}
			if got := p.Field("Description"); !strings.Contains(got, "\n .\n Second paragraph.") {
				t.Errorf("description continuation lost: %q", got)
			}
			st, _ := os.Stat(path)
			if p.Size != st.Size() || len(p.SHA256) != 64 || len(p.MD5) != 32 {
				t.Errorf("size/sums %d %q %q", p.Size, p.SHA256, p.MD5)
			}
			// The record must survive the master's JSON state.
			b, err := json.Marshal(p)
			if err != nil {
				t.Fatal(err)
			}
			var back pkgmeta.Package
			if err := json.Unmarshal(b, &back); err != nil || back.Field("Depends") != "libc6 (>= 2.36)" {
				t.Errorf("json round trip: %v %+v", err, back)
			}
		})
	}
}

func TestReadRPM(t *testing.T) {
	dir := t.TempDir()
	s := kilntest.Signer(t)
	path := repotest.BuildRPM(t, dir, repotest.RPM{
		Name: "opencore", Version: "2.1", Release: "3.el9", Epoch: 2, Arch: "x86_64",
		Requires: []string{"libgrace >= 1.2", "/bin/sh"}, Provides: []string{"opencore-api = 2"},
		Conflicts: []string{"oldcore < 1"}, Obsoletes: []string{"corelegacy"},
		Files: map[string]string{"/usr/bin/opencore": "#!/bin/sh\n", "/usr/share/doc/opencore/README": "hi\n"},
		Sign:  s.RPMSign,
	})
	p, err := pkgmeta.ReadRPM(path)
	if err != nil {
		t.Fatal(err)
	}
	r := p.RPM
	if p.Name != "opencore" || p.Epoch != 2 || p.Version != "2.1" || p.Release != "3.el9" || p.Arch != "x86_64" {
		t.Errorf("nevra %+v", p)
	}
	if p.FullVersion() != "2:2.1-3.el9" || p.FileName != "opencore-2.1-3.el9.x86_64.rpm" {
		t.Errorf("full version %q file %q", p.FullVersion(), p.FileName)
	}
	if r.HeaderStart <= 96 || r.HeaderEnd <= r.HeaderStart || r.HeaderEnd > p.Size {
		t.Errorf("header range %d-%d size %d", r.HeaderStart, r.HeaderEnd, p.Size)
	}
	if r.Summary != "test package opencore" || r.License != "MIT" || r.BuildTime != 1700000000 {
		t.Errorf("header fields %+v", r)
	}
	want := map[string]bool{"libgrace GE 0 1.2": true, "/bin/sh": true}
	for _, d := range r.Requires {
		key := strings.TrimSpace(strings.Join([]string{d.Name, d.Flags, d.Epoch, d.Ver}, " "))
		delete(want, key)
	}
	if len(want) != 0 {
		t.Errorf("requires %+v missing %v", r.Requires, want)
	}
	if len(r.Conflicts) != 1 || r.Conflicts[0].Flags != "LT" || len(r.Obsoletes) != 1 {
		t.Errorf("conflicts %+v obsoletes %+v", r.Conflicts, r.Obsoletes)
	}
	var files []string
	for _, f := range r.Files {
		files = append(files, f.Path)
	}
	if strings.Join(files, ",") != "/usr/bin/opencore,/usr/share/doc/opencore/README" {
		t.Errorf("files %v", files)
	}
}

func TestCorruptAndUnsafe(t *testing.T) {
	dir := t.TempDir()
	deb := repotest.BuildDeb(t, dir, repotest.Deb{Name: "hello", Version: "1.0-1", Arch: "all", Compression: "gzip"})
	rpm := repotest.BuildRPM(t, dir, repotest.RPM{Name: "hello", Version: "1.0", Release: "1"})
	mutate := func(src, name string, f func([]byte) []byte) string {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(dir, name)
		if err := os.WriteFile(out, f(b), 0o644); err != nil {
			t.Fatal(err)
		}
		return out
	}
	flip := func(at func(int) int) func([]byte) []byte {
		return func(b []byte) []byte { b[at(len(b))] ^= 0x40; return b }
	}
	tests := []struct {
		name, path, file string
		want             error
	}{
		{"deb truncated", mutate(deb, "t.deb", func(b []byte) []byte { return b[:len(b)/2] }), "t.deb", pkgmeta.ErrCorrupt},
		{"deb payload byte", mutate(deb, "p.deb", flip(func(n int) int { return n - 20 })), "p.deb", pkgmeta.ErrCorrupt},
		{"deb not ar", mutate(deb, "h.deb", flip(func(int) int { return 1 })), "h.deb", pkgmeta.ErrCorrupt},
		{"rpm truncated", mutate(rpm, "t.rpm", func(b []byte) []byte { return b[:len(b)-10] }), "t.rpm", pkgmeta.ErrCorrupt},
		{"rpm payload byte", mutate(rpm, "p.rpm", flip(func(n int) int { return n - 30 })), "p.rpm", pkgmeta.ErrCorrupt},
		{"rpm header byte", mutate(rpm, "h.rpm", flip(func(int) int { return 96 + 16*8 + 200 })), "h.rpm", pkgmeta.ErrCorrupt},
		{"empty", mutate(deb, "e.deb", func([]byte) []byte { return nil }), "e.deb", pkgmeta.ErrCorrupt},
		{"dotdot", deb, "../hello.deb", pkgmeta.ErrUnsafeName},
		{"slash", deb, "a/hello.deb", pkgmeta.ErrUnsafeName},
		{"nul", deb, "hello\x00.deb", pkgmeta.ErrUnsafeName},
		{"unknown", deb, "hello.tar", pkgmeta.ErrFormat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := pkgmeta.ReadFile(tt.path, tt.file)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if tt.want == pkgmeta.ErrCorrupt && !strings.Contains(err.Error(), filepath.Base(tt.path)) {
				t.Errorf("error does not name the file: %v", err)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	deb := &pkgmeta.Package{Format: pkgmeta.Deb, Name: "opencore", Version: "1.0-1", Arch: "amd64", FileName: "opencore_1.0-1_amd64.deb"}
	all := &pkgmeta.Package{Format: pkgmeta.Deb, Name: "opencore-doc", Version: "1.0-1", Arch: "all", FileName: "opencore-doc_1.0-1_all.deb"}
	rpm := &pkgmeta.Package{Format: pkgmeta.RPM, Name: "opencore", Version: "1.0", Release: "1", Arch: "noarch", FileName: "x.rpm"}
	tests := []struct {
		name    string
		p       *pkgmeta.Package
		want    pkgmeta.Expect
		wantErr string
	}{
		{"ok", deb, pkgmeta.Expect{Format: pkgmeta.Deb, Name: "opencore", Version: "1.0-1", Arch: "amd64"}, ""},
		{"arch", deb, pkgmeta.Expect{Arch: "arm64"}, `architecture is "amd64", target wants "arm64"`},
		{"name", deb, pkgmeta.Expect{Name: "libgrace"}, `name is "opencore"`},
		{"version", deb, pkgmeta.Expect{Version: "1.1-1"}, `version is "1.0-1"`},
		{"format", deb, pkgmeta.Expect{Format: pkgmeta.RPM}, "format is deb"},
		{"all fits", all, pkgmeta.Expect{Arch: "arm64"}, ""},
		{"noarch fits", rpm, pkgmeta.Expect{Arch: "x86_64", Version: "1.0-1"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := pkgmeta.Check(tt.p, tt.want)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, pkgmeta.ErrMismatch) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("got %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestCompare(t *testing.T) {
	tests := []struct {
		f    pkgmeta.Format
		a, b string
		want int
	}{
		{pkgmeta.Deb, "1.0-1", "1.0-2", -1},
		{pkgmeta.Deb, "1.0~rc1-1", "1.0-1", -1},
		{pkgmeta.Deb, "1:0.9", "2.0", 1},
		{pkgmeta.Deb, "1.10", "1.9", 1},
		{pkgmeta.Deb, "1.0a", "1.0", 1},
		{pkgmeta.Deb, "1.0+b1", "1.0", 1},
		{pkgmeta.Deb, "1.0", "1.0", 0},
		{pkgmeta.RPM, "1.10", "1.9", 1},
		{pkgmeta.RPM, "1.0~rc1", "1.0", -1},
		{pkgmeta.RPM, "1.0^git1", "1.0", 1},
		{pkgmeta.RPM, "1.0a", "1.0.1", -1},
		{pkgmeta.RPM, "2.0", "2.0", 0},
	}
	sign := func(n int) int {
		switch {
		case n < 0:
			return -1
		case n > 0:
			return 1
		}
		return 0
	}
	for _, tt := range tests {
		a := &pkgmeta.Package{Format: tt.f, Version: tt.a, Release: "1"}
		b := &pkgmeta.Package{Format: tt.f, Version: tt.b, Release: "1"}
		if got := sign(pkgmeta.Compare(a, b)); got != tt.want {
			t.Errorf("%s %s vs %s = %d, want %d", tt.f, tt.a, tt.b, got, tt.want)
		}
		if got := sign(pkgmeta.Compare(b, a)); got != -tt.want {
			t.Errorf("%s %s vs %s = %d, want %d", tt.f, tt.b, tt.a, got, -tt.want)
		}
	}
}
