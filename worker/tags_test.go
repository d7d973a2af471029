package worker

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/kiln-build/kiln/internal/kilntest"
)

func TestDetectTags(t *testing.T) {
	tests := []struct {
		name      string
		osRelease string
		machine   string
		tools     []string
		want      []string
		problems  int
	}{
		{
			name:      "debian with pbuilder",
			osRelease: "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\nID=debian\n",
			machine:   "x86_64",
			tools:     []string{"pbuilder", "dpkg-buildpackage"},
			want:      []string{"amd64", "bookworm", "debian", "dpkg-buildpackage", "pbuilder", "x86_64"},
		},
		{
			name:      "sbuild needs mmdebstrap too",
			osRelease: "ID=debian\nVERSION_CODENAME=trixie\n",
			machine:   "x86_64",
			tools:     []string{"sbuild", "mmdebstrap", "mock"},
			want:      []string{"amd64", "debian", "mock", "sbuild", "trixie", "x86_64"},
		},
		{
			name:      "sbuild without mmdebstrap",
			osRelease: "ID=debian\nVERSION_CODENAME=trixie\n",
			machine:   "x86_64",
			tools:     []string{"sbuild"},
			want:      []string{"amd64", "debian", "trixie", "x86_64"},
		},
		{
			name:      "rocky with a dotted version and mock",
			osRelease: "NAME=\"Rocky Linux\"\nVERSION=\"9.4 (Blue Onyx)\"\nID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\nVERSION_ID=\"9.4\"\n# comment\n",
			machine:   "aarch64",
			tools:     []string{"mock", "rpmbuild"},
			want:      []string{"9", "9.4", "aarch64", "arm64", "mock", "rocky", "rpmbuild"},
		},
		{
			name:     "no os-release",
			machine:  "riscv64",
			want:     []string{"riscv64"},
			problems: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "os-release")
			if tt.osRelease != "" {
				if err := os.WriteFile(path, []byte(tt.osRelease), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			p := Probe{
				OSRelease: path,
				Machine:   func() (string, error) { return tt.machine, nil },
				LookPath: func(f string) (string, error) {
					if slices.Contains(tt.tools, f) {
						return "/usr/bin/" + f, nil
					}
					return "", errors.New("not found")
				},
			}
			tags, problems := p.Detect()
			if got := mergeTags(tags); !slices.Equal(got, tt.want) {
				t.Errorf("tags %v, want %v", got, tt.want)
			}
			if len(problems) != tt.problems {
				t.Errorf("problems %v, want %d", problems, tt.problems)
			}
		})
	}
}

func TestConfigTagsMerged(t *testing.T) {
	w, err := New(Config{
		Name: "w1", NATSURL: "nats://127.0.0.1:1", WorkDir: t.TempDir(), Tags: []string{"big", " debian ", ""},
		Probe: Probe{OSRelease: filepath.Join("testdata", "missing"), Machine: func() (string, error) { return "x86_64", nil },
			LookPath: func(string) (string, error) { return "", errors.New("none") }},
		Logger: kilntest.Logger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := w.Tags(), []string{"amd64", "big", "debian", "x86_64"}; !slices.Equal(got, want) {
		t.Errorf("tags %v, want %v", got, want)
	}
}

func TestConfigRefused(t *testing.T) {
	for _, cfg := range []Config{
		{Name: "", NATSURL: "nats://x", WorkDir: "/tmp"},
		{Name: "a.b", NATSURL: "nats://x", WorkDir: "/tmp"},
		{Name: "a>", NATSURL: "nats://x", WorkDir: "/tmp"},
		{Name: "w1", WorkDir: "/tmp"},
		{Name: "w1", NATSURL: "nats://x"},
		{Name: "w1", NATSURL: "nats://x", WorkDir: "/tmp", Slots: -1},
	} {
		if _, err := New(cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("New(%+v) = %v, want ErrConfig", cfg, err)
		}
	}
}
