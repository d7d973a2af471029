package repo_test

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/internal/kilntest"
	"github.com/kiln-build/kiln/repo"
	"github.com/kiln-build/kiln/repo/internal/repotest"
	"github.com/kiln-build/kiln/repo/pkgmeta"
)

func TestHandler(t *testing.T) {
	work := t.TempDir()
	root := filepath.Join(work, "repos")
	pub := openPublisher(t, root, kilntest.Signer(t))
	deb := read(t, repotest.BuildDeb(t, work, repotest.Deb{Name: "hello", Version: "1.0-1", Arch: "amd64"}))
	rpm := read(t, repotest.BuildRPM(t, work, repotest.RPM{Name: "hello", Version: "1.0", Release: "1"}))
	v := publish(t, pub, "dev", repo.TargetContents{Target: bookwormAmd64, Packages: []*pkgmeta.Package{deb}},
		repo.TargetContents{Target: centos9, Packages: []*pkgmeta.Package{rpm}})
	if err := os.WriteFile(filepath.Join(work, "secret"), []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := serve(t, root)
	tests := []struct {
		name, path  string
		header      string
		status      int
		contentType string
	}{
		{"InRelease", "/repos/dev/apt/debian/dists/bookworm/InRelease", "", 200, "text/plain; charset=utf-8"},
		{"Packages.xz", "/repos/dev/apt/debian/dists/bookworm/main/binary-amd64/Packages.xz", "", 200, "application/x-xz"},
		{"deb", "/repos/dev/apt/debian/pool/bookworm/main/h/hello/hello_1.0-1_amd64.deb", "", 200, "application/vnd.debian.binary-package"},
		{"deb range", "/repos/dev/apt/debian/pool/bookworm/main/h/hello/hello_1.0-1_amd64.deb", "bytes=0-7", 206, "application/vnd.debian.binary-package"},
		{"repomd", "/repos/dev/yum/centos/9/x86_64/repodata/repomd.xml", "", 200, "application/xml"},
		{"rpm", "/repos/dev/yum/centos/9/x86_64/Packages/h/hello-1.0-1.noarch.rpm", "", 200, "application/x-rpm"},
		{"dotdot", "/repos/dev/../../secret", "", 404, ""},
		{"encoded dotdot", "/repos/dev/%2e%2e/%2e%2e/secret", "", 404, ""},
		{"manifest hidden", "/repos/dev/.kiln/manifest.json", "", 404, ""},
		{"store hidden", "/repos/.store", "", 404, ""},
		{"version dir", "/repos/dev/" + v.ID + "/apt/debian/dists/bookworm/InRelease", "", 404, ""},
		{"current dir", "/repos/dev/current/apt/debian/dists/bookworm/InRelease", "", 404, ""},
		{"directory", "/repos/dev/apt/debian/dists", "", 404, ""},
		{"unknown channel", "/repos/stable/apt/debian/dists/bookworm/InRelease", "", 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, srv.URL+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			// Keep the client from cleaning the path before it is sent.
			req.URL.Opaque = tt.path
			if tt.header != "" {
				req.Header.Set("Range", tt.header)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if tt.contentType != "" && resp.Header.Get("Content-Type") != tt.contentType {
				t.Errorf("content type %q, want %q", resp.Header.Get("Content-Type"), tt.contentType)
			}
			if tt.status == 206 && string(body) != "!<arch>\n" {
				t.Errorf("range body %q", body)
			}
			if strings.Contains(string(body), "secret") {
				t.Errorf("escaped the root")
			}
		})
	}
}

func TestClientConfig(t *testing.T) {
	key := []byte("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nxsBNBGV0ZXN0AQgA\n=abcd\n-----END PGP PUBLIC KEY BLOCK-----\n")
	for _, tt := range []struct {
		golden string
		target repo.Target
	}{
		{"client-bookworm-amd64.sources", bookwormAmd64},
		{"client-centos-9-x86_64.repo", centos9},
	} {
		t.Run(tt.golden, func(t *testing.T) {
			got, err := repo.ClientConfig("stable", tt.target, "http://farm.example:8010/repos/", key)
			if err != nil {
				t.Fatal(err)
			}
			kilntest.Golden(t, filepath.Join("testdata", tt.golden), []byte(got))
		})
	}
	if _, err := repo.ClientConfig("stable", centos9, "http://x", []byte("not a key")); err == nil {
		t.Error("accepted a non-key")
	}
}
