package steps

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/kiln-build/kiln/internal/kilntest"
	"github.com/kiln-build/kiln/protocol"
)

// The orig tarball comes from where packagers keep it, the first of:
// pristine-tar branch, upstream tag, with: orig or orig_url, the tree.
// Each test builds the libgreet fixture with the real dpkg-source and
// checks the .dsc it wrote.

// gitToolEnv runs git and pristine-tar without the machine's or the
// user's git configuration, as a committer the tests name.
var gitToolEnv = []string{"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=" + os.DevNull, "GIT_TERMINAL_PROMPT=0",
	"GIT_AUTHOR_NAME=Kiln Test", "GIT_AUTHOR_EMAIL=test@kiln.invalid", "GIT_COMMITTER_NAME=Kiln Test", "GIT_COMMITTER_EMAIL=test@kiln.invalid"}

func runIn(t *testing.T, dir string, argv ...string) string {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), gitToolEnv...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
	}
	return string(out)
}

// packagedRepo makes the tree at dir (the libgreet fixture) a repository
// as a gbp user keeps one: the upstream files on branch upstream, tagged
// with each of tags, and main adding debian/ on top.
func packagedRepo(t *testing.T, dir string, opts []kilntest.GitOption, tags ...string) *kilntest.Repo {
	t.Helper()
	r := kilntest.GitRepo(t, append(opts, kilntest.GitAt(dir))...)
	aside := filepath.Join(t.TempDir(), "debian")
	if err := os.Rename(filepath.Join(dir, "debian"), aside); err != nil {
		t.Fatal(err)
	}
	r.Commit("upstream", "upstream 1.0")
	for _, tag := range tags {
		r.Tag(tag)
	}
	if err := os.Rename(aside, filepath.Join(dir, "debian")); err != nil {
		t.Fatal(err)
	}
	r.Commit("main", "packaging")
	return r
}

// releaseTarball packs the upstream files of the tree at dir as upstream
// released them, with tar and gzip: their headers carry the time and
// owner of this run, so the bytes differ from any orig the step makes.
func releaseTarball(t *testing.T, dir string) string {
	t.Helper()
	kilntest.NeedTool(t, "tar", "gzip")
	out := t.TempDir()
	if err := copyTree(dir, filepath.Join(out, "libgreet-1.0"), ".git", ".kiln", "debian"); err != nil {
		t.Fatal(err)
	}
	runIn(t, out, "tar", "-czf", "libgreet_1.0.orig.tar.gz", "libgreet-1.0")
	return filepath.Join(out, "libgreet_1.0.orig.tar.gz")
}

// signTarball writes an armored detached signature next to tarball by a
// new key, and returns that key, armored, for debian/upstream/signing-key.asc.
func signTarball(t *testing.T, tarball string) string {
	t.Helper()
	key, err := openpgp.NewEntity("Upstream", "", "upstream@kiln.invalid", &packet.Config{RSABits: 2048})
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(tarball)
	if err != nil {
		t.Fatal(err)
	}
	var sig bytes.Buffer
	if err := openpgp.ArmoredDetachSign(&sig, key, bytes.NewReader(data), nil); err != nil {
		t.Fatal(err)
	}
	writeFile(t, tarball+".asc", sig.String())
	var pub bytes.Buffer
	w, err := armor.Encode(&pub, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := key.Serialize(w); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return pub.String() + "\n"
}

func sha256Of(t *testing.T, path string) string {
	t.Helper()
	sum, err := fileSHA256(path)
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

// checkDsc checks that the source step's .dsc lists each file with the
// SHA-256 of want's file, and that the file is next to it.
func checkDsc(t *testing.T, env *Env, want map[string]string) {
	t.Helper()
	dsc := filepath.Join(env.Workspace, "dist/source/libgreet_1.0-1.dsc")
	files, err := listedFiles(dsc)
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]string{}
	for _, f := range files {
		listed[f.Name] = f.SHA256
	}
	for name, path := range want {
		sum := sha256Of(t, path)
		if listed[name] != sum {
			t.Errorf("%s lists %s with SHA-256 %q, want %s (%s); it lists %v", filepath.Base(dsc), name, listed[name], sum, path, listed)
		}
		if got := sha256Of(t, filepath.Join(env.Workspace, "dist/source", name)); got != sum {
			t.Errorf("dist/source/%s has SHA-256 %s, want %s", name, got, sum)
		}
	}
	for name := range listed {
		if strings.HasSuffix(name, ".asc") && want[name] == "" {
			t.Errorf("%s lists %s, which no source had", filepath.Base(dsc), name)
		}
	}
}

func TestOrigFromPristineTar(t *testing.T) {
	kilntest.NeedTool(t, "dpkg-source", "dpkg-parsechangelog", "git", "pristine-tar")
	tests := []struct {
		name   string
		clone  bool // checked out by the checkout step: the branch is origin/pristine-tar
		signed bool // the signature is on the branch, and its key in debian/upstream
		want   string
	}{
		{"local branch", false, false, "orig from pristine-tar"},
		{"clone's remote branch, signed", true, true, "orig from pristine-tar (origin/pristine-tar), signed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, log := newTestEnv(t, jobFor("debian/bookworm/amd64", "apt"))
			dir := env.Workspace
			var opts []kilntest.GitOption
			if tt.clone {
				dir = t.TempDir()
				opts = append(opts, kilntest.GitPushTo(filepath.Join(t.TempDir(), "libgreet.git")))
			}
			if err := copyTree("testdata/libgreet", dir); err != nil {
				t.Fatal(err)
			}
			tarball := releaseTarball(t, dir)
			want := map[string]string{"libgreet_1.0.orig.tar.gz": tarball}
			commitArgs := []string{"pristine-tar", "commit"}
			if tt.signed {
				writeFile(t, filepath.Join(dir, "debian/upstream/signing-key.asc"), signTarball(t, tarball))
				want["libgreet_1.0.orig.tar.gz.asc"] = tarball + ".asc"
				commitArgs = append(commitArgs, "--signature-file", tarball+".asc")
			}
			r := packagedRepo(t, dir, opts)
			runIn(t, dir, append(commitArgs, tarball, "upstream")...)
			if tt.clone {
				runIn(t, dir, "git", "push", "-q", r.URL, "pristine-tar")
				env.Job.Git = r.URL
				if o, err := runStep(t, Checkout{}, env, nil); err != nil {
					t.Fatalf("checkout: %v (%s)\n%s", err, o.Summary, log)
				}
				if out := runIn(t, dir, "git", "-C", env.Workspace, "branch", "--list", "pristine-tar"); out != "" {
					t.Fatalf("the clone has a local pristine-tar branch, so this case proves nothing: %s", out)
				}
			}
			o, err := runStep(t, Source{}, env, nil)
			if err != nil {
				t.Fatalf("source: %v (%s)\n%s", err, o.Summary, log)
			}
			if !strings.HasSuffix(o.Summary, ", "+tt.want) {
				t.Errorf("summary %q does not end with %q", o.Summary, tt.want)
			}
			checkDsc(t, env, want)
			if tt.signed && (!log.has("verifying ./libgreet_1.0.orig.tar.gz.asc") || log.has("cannot verify")) {
				t.Errorf("dpkg-source did not verify the upstream signature:\n%s", log)
			}
		})
	}
}

func TestOrigFromUpstreamTag(t *testing.T) {
	kilntest.NeedTool(t, "dpkg-source", "dpkg-parsechangelog", "git")
	tests := []struct {
		name string
		tags []string
		with map[string]string
		want string // summary's end; "" when the orig is made from the tree
	}{
		{"gbp's default", []string{"upstream/1.0"}, nil, "orig from tag upstream/1.0"},
		{"with: upstream_tag", []string{"v1.0"}, map[string]string{"upstream_tag": "v%(version)s"}, "orig from tag v1.0"},
		{"no tag in the default format", []string{"v1.0"}, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, log := fixtureEnv(t, "libgreet", "apt", "debian/bookworm/amd64")
			// Far from any tag's time: an orig made from the tree carries it.
			env.Props.Set("commit_time", "1000000000")
			r := packagedRepo(t, env.Workspace, nil, tt.tags...)
			o, err := runStep(t, Source{}, env, tt.with)
			if err != nil {
				t.Fatalf("source: %v (%s)\n%s", err, o.Summary, log)
			}
			orig := filepath.Join(env.Workspace, "dist/source/libgreet_1.0.orig.tar.gz")
			entries := tarEntries(t, orig)
			var names []string
			for name := range entries {
				names = append(names, name)
			}
			slices.Sort(names)
			wantNames := []string{"libgreet-1.0/", "libgreet-1.0/Makefile", "libgreet-1.0/greet.c", "libgreet-1.0/greet.h", "libgreet-1.0/libgreet.spec"}
			if !slices.Equal(names, wantNames) {
				t.Errorf("orig entries %v, want %v", names, wantNames)
			}
			wantTime := time.Unix(1000000000, 0)
			if tt.want == "" {
				tt.want = "orig made from the tree (its checksum will differ from the archive's)"
			} else {
				tagged := strings.TrimSpace(runIn(t, r.Dir, "git", "log", "-1", "--format=%ct", r.Head()+"^"))
				sec, err := strconv.ParseInt(tagged, 10, 64)
				if err != nil {
					t.Fatal(err)
				}
				wantTime = time.Unix(sec, 0)
			}
			for name, h := range entries {
				if !h.ModTime.Equal(wantTime) || h.Uname != "root" {
					t.Errorf("%s: mtime %v owner %s, want %v root", name, h.ModTime, h.Uname, wantTime)
				}
			}
			if !strings.HasSuffix(o.Summary, ", "+tt.want) {
				t.Errorf("summary %q does not end with %q", o.Summary, tt.want)
			}
		})
	}
}

// tarEntries reads a gzipped tarball's headers, by name.
func tarEntries(t *testing.T, path string) map[string]*tar.Header {
	t.Helper()
	entries := map[string]*tar.Header{}
	readTar(t, path, func(h *tar.Header, _ io.Reader) { entries[h.Name] = h })
	return entries
}

func readTar(t *testing.T, path string, each func(h *tar.Header, body io.Reader)) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		each(h, tr)
	}
}

// serveTarball serves a released tarball and its signature until the test
// ends, and returns the tarball's URL.
func serveTarball(t *testing.T, tarball string) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/releases/libgreet-1.0.tar.gz", func(w http.ResponseWriter, r *http.Request) { http.ServeFile(w, r, tarball) })
	mux.HandleFunc("/releases/libgreet-1.0.tar.gz.asc", func(w http.ResponseWriter, r *http.Request) { http.ServeFile(w, r, tarball+".asc") })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL + "/releases/libgreet-1.0.tar.gz"
}

// with: orig and orig_url, in a tree outside git; the signature travels.
func TestOrigFromWith(t *testing.T) {
	kilntest.NeedTool(t, "dpkg-source", "dpkg-parsechangelog")
	tarball := releaseTarball(t, "testdata/libgreet")
	key := signTarball(t, tarball)
	origURL := serveTarball(t, tarball)
	tests := []struct {
		name string
		with map[string]string
		want string
	}{
		{"orig_url with its checksum and signature", map[string]string{"orig_url": origURL, "orig_sha256": sha256Of(t, tarball), "orig_asc_url": origURL + ".asc"},
			"orig from " + origURL + ", signed"},
		{"orig, with the signature beside it", map[string]string{"orig": ".kiln/up/libgreet-1.0.tar.gz"}, "orig from .kiln/up/libgreet-1.0.tar.gz, signed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, log := fixtureEnv(t, "libgreet", "apt", "debian/bookworm/amd64")
			writeFile(t, filepath.Join(env.Workspace, "debian/upstream/signing-key.asc"), key)
			for _, f := range []string{"", ".asc"} {
				if err := copyFile(tarball+f, filepath.Join(env.Workspace, ".kiln/up/libgreet-1.0.tar.gz"+f), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			o, err := runStep(t, Source{}, env, tt.with)
			if err != nil {
				t.Fatalf("source: %v (%s)\n%s", err, o.Summary, log)
			}
			if !strings.HasSuffix(o.Summary, ", "+tt.want) {
				t.Errorf("summary %q does not end with %q", o.Summary, tt.want)
			}
			checkDsc(t, env, map[string]string{"libgreet_1.0.orig.tar.gz": tarball, "libgreet_1.0.orig.tar.gz.asc": tarball + ".asc"})
			if !log.has("verifying ./libgreet_1.0.orig.tar.gz.asc") || log.has("cannot verify") {
				t.Errorf("dpkg-source did not verify the upstream signature:\n%s", log)
			}
		})
	}
}

// A 3.0 (quilt) tree builds with its patches applied (a .pc/ as quilt or
// dpkg-source leaves it) and unapplied, and the orig made from it holds
// the upstream files as they were before the patches, without .pc/.
func TestOrigFromTreeWithPatches(t *testing.T) {
	kilntest.NeedTool(t, "dpkg-source", "dpkg-parsechangelog")
	const patch = `Description: shout the greeting and add a NEWS file
--- a/greet.c
+++ b/greet.c
@@ -1,1 +1,1 @@
-#include <stdio.h>
+#include <stdio.h> /* shouting */
--- /dev/null
+++ b/NEWS.kiln
@@ -0,0 +1 @@
+news
`
	pristine, err := os.ReadFile("testdata/libgreet/greet.c")
	if err != nil {
		t.Fatal(err)
	}
	for _, applied := range []bool{false, true} {
		t.Run(map[bool]string{false: "unapplied", true: "applied"}[applied], func(t *testing.T) {
			env, log := fixtureEnv(t, "libgreet", "apt", "debian/bookworm/amd64")
			ws := env.Workspace
			writeFile(t, filepath.Join(ws, "debian/patches/shout.patch"), patch)
			writeFile(t, filepath.Join(ws, "debian/patches/series"), "shout.patch\n")
			if applied {
				runIn(t, ws, "dpkg-source", "--before-build", ".")
				if _, err := os.Stat(filepath.Join(ws, ".pc/applied-patches")); err != nil {
					t.Fatalf("dpkg-source --before-build left no .pc/applied-patches, so this case proves nothing: %v", err)
				}
			}
			o, err := runStep(t, Source{}, env, nil)
			if err != nil {
				t.Fatalf("source: %v (%s)\n%s", err, o.Summary, log)
			}
			if want := ", orig made from the tree (its checksum will differ from the archive's)"; !strings.HasSuffix(o.Summary, want) {
				t.Errorf("summary %q does not end with %q", o.Summary, want)
			}
			var names []string
			readTar(t, filepath.Join(ws, "dist/source/libgreet_1.0.orig.tar.gz"), func(h *tar.Header, body io.Reader) {
				names = append(names, h.Name)
				if h.Name == "libgreet-1.0/greet.c" {
					if b, _ := io.ReadAll(body); !bytes.Equal(b, pristine) {
						t.Errorf("the orig's greet.c is patched:\n%s", b)
					}
				}
			})
			for _, n := range names {
				if strings.Contains(n, "/.pc") || strings.Contains(n, "/debian") || strings.HasSuffix(n, "NEWS.kiln") {
					t.Errorf("the orig holds %s", n)
				}
			}
			if !slices.Contains(names, "libgreet-1.0/greet.c") {
				t.Errorf("the orig lacks greet.c: %v", names)
			}
			if b, _ := os.ReadFile(filepath.Join(ws, "greet.c")); applied == bytes.Equal(b, pristine) {
				t.Errorf("the step changed the workspace's greet.c (applied: %v):\n%s", applied, b)
			}
		})
	}
}

// The orig's sources that cannot give it fail the step, with the reason in
// the summary and nothing in dist/.
func TestOrigFailureReasons(t *testing.T) {
	kilntest.NeedTool(t, "dpkg-source", "dpkg-parsechangelog", "git", "pristine-tar")
	tarball := releaseTarball(t, "testdata/libgreet")
	origURL := serveTarball(t, tarball)
	sum := sha256Of(t, tarball)
	wrong := strings.Repeat("0", 64)
	gone := strings.Replace(origURL, "1.0", "0.9", 1)
	// The changelog moves to upstream 1.1; the pristine-tar branch keeps 1.0.
	newUpstream := func(t *testing.T, ws string) {
		r := packagedRepo(t, ws, nil)
		runIn(t, ws, "pristine-tar", "commit", tarball, "upstream")
		p := filepath.Join(ws, "debian/changelog")
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, p, strings.Replace(string(b), "(1.0-1)", "(1.1-1)", 1))
		r.Commit("main", "new upstream 1.1")
	}
	// pristine-tar's delta names an upstream tree that only the packager's
	// repository had: an unpushed branch, here a tree made and dropped.
	lostTree := func(t *testing.T, ws string) {
		packagedRepo(t, ws, nil)
		tree := strings.TrimSpace(runIn(t, ws, "sh", "-ec", `export GIT_INDEX_FILE=.git/kiln-test-index
git read-tree upstream
git update-index --add --cacheinfo "100644,$(echo vendored | git hash-object -w --stdin),VENDORED"
git write-tree
rm "$GIT_INDEX_FILE"`))
		runIn(t, ws, "pristine-tar", "commit", tarball, tree)
		runIn(t, ws, "git", "gc", "-q", "--prune=now")
		if out, err := exec.Command("git", "-C", ws, "cat-file", "-e", tree).CombinedOutput(); err == nil {
			t.Fatalf("tree %s survived git gc, so this case proves nothing: %s", tree, out)
		}
	}
	tagged := func(tag string) func(*testing.T, string) {
		return func(t *testing.T, ws string) { packagedRepo(t, ws, nil, tag) }
	}
	runFailureCases(t, Source{}, "apt", "debian/bookworm/amd64", []failureCase{
		{"pristine-tar lacks the changelog's upstream version", "libgreet", newUpstream, ErrMissingOrig,
			"source: missing orig tarball libgreet_1.1.orig.tar.*: the pristine-tar branch has no tarball of upstream version 1.1; it has 1.0", nil},
		{"pristine-tar's upstream tree is not in the repository", "libgreet", lostTree, ErrMissingOrig,
			"source: missing orig tarball libgreet_1.0.orig.tar.gz: pristine-tar needs upstream tree", nil},
		{"with: upstream_tag names a tag that is not there", "libgreet", tagged("upstream/1.0"), ErrMissingOrig,
			"missing orig tarball libgreet_1.0.orig.tar.gz: with: {upstream_tag: v%(version)s}: the repository has no tag v1.0", map[string]string{"upstream_tag": "v%(version)s"}},
		{"with: upstream_tag in no format gbp knows", "libgreet", tagged("v1.0"), ErrMissingOrig,
			`with: upstream_tag: "v%(upstream_version)s": % must start %(version)s, %(hversion)s or %%`, map[string]string{"upstream_tag": "v%(upstream_version)s"}},
		{"orig_url with another checksum", "libgreet", func(*testing.T, string) {}, ErrOrigChecksum,
			"source: orig tarball checksum mismatch: " + origURL + " has SHA-256 " + sum + ", with: orig_sha256 says " + wrong, map[string]string{"orig_url": origURL, "orig_sha256": wrong}},
		{"orig_url without a checksum", "libgreet", func(*testing.T, string) {}, ErrMissingOrig,
			"missing orig tarball libgreet_1.0.orig.tar.gz: with: orig_url needs orig_sha256", map[string]string{"orig_url": origURL}},
		{"orig_url not found", "libgreet", func(*testing.T, string) {}, ErrMissingOrig,
			"missing orig tarball libgreet_1.0.orig.tar.gz: GET " + gone + ": 404 Not Found", map[string]string{"orig_url": gone, "orig_sha256": sum}},
	})
}

func TestUpstreamTagFormat(t *testing.T) {
	tests := []struct{ format, version, want, err string }{
		{"upstream/%(version)s", "1.2", "upstream/1.2", ""},
		{"upstream/%(version)s", "1.2~rc1", "upstream/1.2_rc1", ""},
		{"upstream/%(version)s", "2:1.2", "upstream/2%1.2", ""},
		{"v%(version)s", "1.2", "v1.2", ""},
		{"libfoo-%(hversion)s", "1.2~rc1", "libfoo-1-2_rc1", ""},
		{"100%%/%(version)s", "1.2", "100%/1.2", ""},
		{"v%(upstreamversion)s", "1.2", "", "% must start"},
		{"v%s", "1.2", "", "% must start"},
		{"v1.2%", "1.2", "", "% must start"},
		{"", "1.2", "", "names no tag"},
	}
	for _, tt := range tests {
		got, err := upstreamTag(tt.format, tt.version)
		if got != tt.want || (err == nil) != (tt.err == "") || (err != nil && !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("upstreamTag(%q, %q) = %q, %v; want %q, error containing %q", tt.format, tt.version, got, err, tt.want, tt.err)
		}
	}
}

// A download that outlives the step's timeout stops with it.
func TestOrigDownloadTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("partial"))
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	defer close(release)
	env, _ := newTestEnv(t, jobFor("debian/bookworm/amd64", "apt"))
	spec := protocol.Step{Timeout: 200 * time.Millisecond, With: map[string]string{"orig_url": srv.URL + "/x.tar.gz", "orig_sha256": strings.Repeat("0", 64)}}
	start := time.Now()
	_, err := origDownload(context.Background(), env, spec, env.Workspace, "x_1.orig.tar.")
	if err == nil || !strings.Contains(err.Error(), "deadline exceeded") || time.Since(start) > 5*time.Second {
		t.Fatalf("err = %v after %v, want the step's deadline", err, time.Since(start))
	}
	if m, _ := filepath.Glob(filepath.Join(env.Workspace, "x_1.orig.tar.*")); len(m) > 0 {
		t.Errorf("a failed download left %v", m)
	}
}
