package steps

import (
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/internal/kilntest"
	"github.com/kiln-build/kiln/repo"
	"github.com/kiln-build/kiln/repo/pkgmeta"
)

// channelWithSource publishes, with the real publisher, the source package
// the source step makes of the hello fixture (1.0-3, its orig made from
// the tree) and serves the channel; it returns the job's RepoURL and the
// published orig's SHA-256.
func channelWithSource(t *testing.T, signer *kilntest.TestSigner) (url, origSHA, poolDir string) {
	t.Helper()
	env, log := fixtureEnv(t, "hello", "apt", "debian/bookworm/amd64")
	env.Props.Set("commit_time", "1000000000")
	if o, err := runStep(t, Source{}, env, nil); err != nil {
		t.Fatalf("source: %v (%s)\n%s", err, o.Summary, log)
	}
	dsc, _ := env.Props.Get("dsc")
	p, err := pkgmeta.ReadFile(filepath.Join(env.Workspace, dsc), filepath.Base(dsc))
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range p.Files {
		p.Files[i].Path = filepath.Join(env.Workspace, filepath.Dir(dsc), f.Name)
		if strings.Contains(f.Name, ".orig.") {
			origSHA = f.SHA256
		}
	}
	root := t.TempDir()
	pub, err := repo.Open(root, signer, repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	target := repo.Target{Distro: "debian", Version: "bookworm", Arch: "amd64", Format: pkgmeta.Deb, Key: "k"}
	if _, err := pub.Publish(context.Background(), "dev", repo.ChannelContents{Targets: []repo.TargetContents{{Target: target, Packages: []*pkgmeta.Package{p}}}}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(repo.Handler(root))
	t.Cleanup(srv.Close)
	return srv.URL + "/dev/" + target.Dir(), origSHA, filepath.Join(root, "dev", "pool", "apt", "debian", "pool", "bookworm", "main", "h", "hello")
}

// Another build of an upstream version the channel has (a later revision,
// or a rebuild from another commit, whose tree-made orig would differ)
// takes the channel's orig, verified through the channel's signature.
func TestOrigFromChannel(t *testing.T) {
	kilntest.NeedTool(t, "dpkg-source", "dpkg-parsechangelog")
	signer := kilntest.Signer(t)
	url, origSHA, pool := channelWithSource(t, signer)
	build := func(t *testing.T, key []byte) (*Env, Outcome, error) {
		env, _ := fixtureEnv(t, "hello", "apt", "debian/bookworm/amd64")
		env.Props.Set("commit_time", "2000000000") // a tree-made orig would differ
		env.Job.RepoURL, env.Job.RepoKey = url, string(key)
		o, err := runStep(t, Source{}, env, nil)
		return env, o, err
	}

	env, o, err := build(t, signer.PublicKey(t))
	if err != nil || !strings.Contains(o.Summary, "orig from the dev channel") {
		t.Fatalf("source: %v (%s)", err, o.Summary)
	}
	dsc, _ := env.Props.Get("dsc")
	p, err := pkgmeta.ReadFile(filepath.Join(env.Workspace, dsc), filepath.Base(dsc))
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Files[0].SHA256; !strings.Contains(p.Files[0].Name, ".orig.") || got != origSHA {
		t.Errorf(".dsc lists %s with %s, want the channel's orig %s", p.Files[0].Name, got, origSHA)
	}

	t.Run("another key", func(t *testing.T) {
		other := kilntest.OtherSigner(t)
		if _, o, err := build(t, other.PublicKey(t)); !errors.Is(err, ErrMissingOrig) || !strings.Contains(o.Summary, "signature") {
			t.Errorf("InRelease signed by another key: %v (%s)", err, o.Summary)
		}
	})
	t.Run("changed orig", func(t *testing.T) {
		orig := filepath.Join(pool, "hello_1.0.orig.tar.gz")
		if err := os.Remove(orig); err != nil { // a hard link into the store: replace, not write through
			t.Fatal(err)
		}
		if err := os.WriteFile(orig, []byte("not the orig"), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, o, err := build(t, signer.PublicKey(t)); !errors.Is(err, ErrMissingOrig) || !strings.Contains(o.Summary, origSHA) {
			t.Errorf("orig with other bytes than the signed index says: %v (%s)", err, o.Summary)
		}
	})
}
