package hooks

import (
	"errors"
	"testing"
)

func TestRepoKey(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"https://github.com/kiln-build/opencore", "github.com/kiln-build/opencore"},
		{"https://github.com/kiln-build/opencore.git", "github.com/kiln-build/opencore"},
		{"https://github.com/kiln-build/opencore/", "github.com/kiln-build/opencore"},
		{"https://github.com/kiln-build/opencore.git/", "github.com/kiln-build/opencore"},
		{"HTTPS://GitHub.COM/kiln-build/opencore", "github.com/kiln-build/opencore"},
		{"http://github.com/kiln-build/opencore", "github.com/kiln-build/opencore"},
		{"https://user:pw@github.com/kiln-build/opencore", "github.com/kiln-build/opencore"},
		{"git@github.com:kiln-build/opencore.git", "github.com/kiln-build/opencore"},
		{"git@github.com:/kiln-build/opencore.git", "github.com/kiln-build/opencore"},
		{"github.com:kiln-build/opencore", "github.com/kiln-build/opencore"},
		{"ssh://git@github.com/kiln-build/opencore.git", "github.com/kiln-build/opencore"},
		{"ssh://git@git.example.org:2222/farm/widget.git", "git.example.org/farm/widget"},
		{"git+ssh://git@git.example.org/farm/widget", "git.example.org/farm/widget"},
		{"git://github.com/kiln-build/opencore.git", "github.com/kiln-build/opencore"},
		{"https://git.example.org:3000/farm/widget", "git.example.org/farm/widget"},
		{"https://gitlab.example.com/group/sub/project.git", "gitlab.example.com/group/sub/project"},
		{"  https://github.com/kiln-build/opencore  ", "github.com/kiln-build/opencore"},
		{"https://github.com/Kiln-Build/OpenCore", "github.com/Kiln-Build/OpenCore"},
		{"ssh://git@[::1]:22/srv/repo.git", "::1/srv/repo"},
		{"/srv/git/opencore.git", "file:/srv/git/opencore"},
		{"file:///srv/git/opencore.git/", "file:/srv/git/opencore"},
		{"file:///srv/git/../git/opencore", "file:/srv/git/opencore"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := RepoKey(tt.in)
			if err != nil || got != tt.want {
				t.Errorf("RepoKey(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
	for _, bad := range []string{"", "   ", "relative/path", "https://github.com/", "https:///o/r", "ftp://host/o/r", "git@github.com:", "/", "https://h/%zz", "https://h/o r", "git@h:o/r\x00"} {
		t.Run("bad "+bad, func(t *testing.T) {
			if got, err := RepoKey(bad); !errors.Is(err, ErrBadURL) {
				t.Errorf("RepoKey(%q) = %q, %v; want ErrBadURL", bad, got, err)
			}
		})
	}
}

func TestWants(t *testing.T) {
	tests := []struct {
		name                       string
		branches                   []string
		branch, tag, defaultBranch string
		want                       bool
	}{
		{"listed", []string{"main", "stable"}, "stable", "", "", true},
		{"not listed", []string{"main"}, "dev", "", "", false},
		{"pattern", []string{"release/*"}, "release/2.1", "", "", true},
		{"pattern is one level", []string{"release/*"}, "release/2.1/hotfix", "", "", false},
		{"tags build every component", []string{"main"}, "", "v1.0", "", true},
		{"empty list: reported default", nil, "develop", "", "develop", true},
		{"empty list: not the reported default", nil, "main", "", "develop", false},
		{"empty list: main when unknown", nil, "main", "", "", true},
		{"empty list: master when unknown", nil, "master", "", "", true},
		{"empty list: other when unknown", nil, "feature", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Component{Name: "c", Repo: "https://h/o/r", Branches: tt.branches}
			if got := c.Wants(tt.branch, tt.tag, tt.defaultBranch); got != tt.want {
				t.Errorf("Wants(%q, %q, %q) = %v", tt.branch, tt.tag, tt.defaultBranch, got)
			}
		})
	}
}

func TestParseRef(t *testing.T) {
	tests := []struct {
		ref, branch, tag string
		ok               bool
	}{
		{"refs/heads/main", "main", "", true},
		{"refs/heads/release/2.1", "release/2.1", "", true},
		{"refs/tags/v1.0", "", "v1.0", true},
		{"refs/heads/", "", "", false},
		{"refs/pull/12/head", "", "", false},
		{"refs/merge-requests/3/head", "", "", false},
		{"HEAD", "", "", false},
		{"main", "", "", false},
	}
	for _, tt := range tests {
		b, tg, ok := ParseRef(tt.ref)
		if b != tt.branch || tg != tt.tag || ok != tt.ok {
			t.Errorf("ParseRef(%q) = %q, %q, %v", tt.ref, b, tg, ok)
		}
	}
}
