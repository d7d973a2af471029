package repo_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/kiln-build/kiln/internal/kilntest"
	"github.com/kiln-build/kiln/repo"
	"github.com/kiln-build/kiln/repo/pkgmeta"
)

var (
	bookwormAmd64 = repo.Target{Distro: "debian", Version: "bookworm", Arch: "amd64", Format: pkgmeta.Deb, Key: "farm"}
	bookwormArm64 = repo.Target{Distro: "debian", Version: "bookworm", Arch: "arm64", Format: pkgmeta.Deb, Key: "farm"}
	centos9       = repo.Target{Distro: "centos", Version: "9", Arch: "x86_64", Format: pkgmeta.RPM, Key: "farm"}
)

func read(t testing.TB, path string) *pkgmeta.Package {
	t.Helper()
	p, err := pkgmeta.ReadFile(path, filepath.Base(path))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func openPublisher(t testing.TB, root string, s repo.Signer) *repo.Publisher {
	t.Helper()
	p, err := repo.Open(root, s, repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func publish(t testing.TB, p *repo.Publisher, channel string, targets ...repo.TargetContents) repo.Version {
	t.Helper()
	v, err := p.Publish(context.Background(), channel, repo.ChannelContents{Targets: targets})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// server serves Handler under /repos/ and records every path requested.
type server struct {
	*httptest.Server
	mu    sync.Mutex
	paths []string
}

func serve(t testing.TB, root string) *server {
	s := &server{}
	h := http.StripPrefix("/repos", repo.Handler(root))
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.paths = append(s.paths, r.URL.Path)
		s.mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *server) requested() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.paths...)
}

// flipByte changes one byte of a served file in place, as a broken mirror
// or an attacker would. Tree files are hard links into the store, so the
// by-hash copy changes too.
func flipByte(t testing.TB, path string, at int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if at < 0 {
		at += len(b)
	}
	b[at] ^= 0x01
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func contains(list []string, sub string) bool {
	for _, s := range list {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// benchLogger shows the publisher's phase timings when KILN_BENCH_LOG is set.
func benchLogger() *slog.Logger {
	if os.Getenv("KILN_BENCH_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return kilntest.QuietLogger()
}
