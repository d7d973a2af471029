package repo_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"

	"github.com/kiln-build/kiln/internal/kilntest"
	"github.com/kiln-build/kiln/internal/pkgclient"
	"github.com/kiln-build/kiln/repo"
	"github.com/kiln-build/kiln/repo/internal/repotest"
	"github.com/kiln-build/kiln/repo/pkgmeta"
)

// verifyChannel checks that what a channel serves is whole: every apt
// InRelease verifies with the test key and every file it lists matches its
// checksum; every repomd.xml has a valid signature and its data files match.
func verifyChannel(t *testing.T, root, channel string, pub []byte) {
	t.Helper()
	keyring, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(pub))
	if err != nil {
		t.Fatal(err)
	}
	cur := filepath.Join(root, channel, "current")
	inReleases, _ := filepath.Glob(filepath.Join(cur, "apt/*/dists/*/InRelease"))
	repomds, _ := filepath.Glob(filepath.Join(cur, "yum/*/*/*/repodata/repomd.xml"))
	if len(inReleases)+len(repomds) == 0 {
		t.Fatalf("%s serves no index", channel)
	}
	for _, in := range inReleases {
		b, err := os.ReadFile(in)
		if err != nil {
			t.Fatal(err)
		}
		block, rest := clearsign.Decode(b)
		if block == nil || len(bytes.TrimSpace(rest)) != 0 {
			t.Fatalf("%s is not one clearsigned message", in)
		}
		if _, err := block.VerifySignature(keyring, nil); err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if bytes.Contains(block.Plaintext, []byte("\n\n")) {
			t.Errorf("%s: blank line inside the Release paragraph", in)
		}
		inSHA := false
		for _, line := range strings.Split(string(block.Plaintext), "\n") {
			if strings.HasPrefix(line, "SHA256:") {
				inSHA = true
				continue
			}
			if !inSHA || !strings.HasPrefix(line, " ") {
				continue
			}
			f := strings.Fields(line)
			data, err := os.ReadFile(filepath.Join(filepath.Dir(in), f[2]))
			if err != nil {
				t.Fatalf("%s lists %s: %v", in, f[2], err)
			}
			if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != f[0] || fmt.Sprint(len(data)) != f[1] {
				t.Errorf("%s: %s does not match Release", in, f[2])
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(in), filepath.Dir(f[2]), "by-hash", "SHA256", f[0])); err != nil {
				t.Errorf("%s: no by-hash copy of %s", in, f[2])
			}
		}
	}
	for _, md := range repomds {
		b, err := os.ReadFile(md)
		if err != nil {
			t.Fatal(err)
		}
		sig, err := os.Open(md + ".asc")
		if err != nil {
			t.Fatal(err)
		}
		_, err = openpgp.CheckArmoredDetachedSignature(keyring, bytes.NewReader(b), sig, nil)
		sig.Close()
		if err != nil {
			t.Fatalf("%s: %v", md, err)
		}
		var m xRepomd
		if err := xml.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		for _, d := range m.Data {
			if _, err := os.Stat(filepath.Join(filepath.Dir(filepath.Dir(md)), d.Location.Href)); err != nil {
				t.Errorf("%s lists missing %s", md, d.Location.Href)
			}
		}
	}
}

func currentID(t *testing.T, root, channel string) string {
	t.Helper()
	id, err := os.Readlink(filepath.Join(root, channel, "current"))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func noTempDirs(t *testing.T, root, channel string) {
	t.Helper()
	left, _ := filepath.Glob(filepath.Join(root, channel, ".tmp-*"))
	if len(left) > 0 {
		t.Errorf("failed publish left %v", left)
	}
}

func TestEmptyTargetsAreValid(t *testing.T) {
	root := t.TempDir()
	s := kilntest.Signer(t)
	pub := openPublisher(t, root, s)
	publish(t, pub, "stable", repo.TargetContents{Target: bookwormAmd64}, repo.TargetContents{Target: centos9})
	verifyChannel(t, root, "stable", s.PublicKey(t))
	pk, err := os.ReadFile(filepath.Join(root, "stable/current/apt/debian/dists/bookworm/main/binary-amd64/Packages"))
	if err != nil || len(pk) != 0 {
		t.Errorf("empty Packages: %q %v", pk, err)
	}
	primary, _ := filepath.Glob(filepath.Join(root, "stable/current/yum/centos/9/x86_64/repodata/*-primary.xml.gz"))
	if len(primary) != 1 {
		t.Errorf("primary files: %v", primary)
	}
	if _, err := exec.LookPath("apt-get"); err == nil {
		srv := serve(t, root)
		sources, _ := repo.ClientConfig("stable", bookwormAmd64, srv.URL+"/repos", s.PublicKey(t))
		apt := pkgclient.NewApt(t, sources)
		if out, err := apt.Run("update"); err != nil || strings.Contains(out, "W:") {
			t.Fatalf("apt-get update on an empty channel: %v\n%s", err, out)
		}
	}
	if _, err := exec.LookPath("dnf"); err == nil {
		srv := serve(t, root)
		repoFile, _ := repo.ClientConfig("stable", centos9, srv.URL+"/repos", s.PublicKey(t))
		key := s.WritePublicKey(t, t.TempDir(), "kiln.asc")
		dnf := pkgclient.NewDnf(t, strings.Replace(repoFile, repo.KeyPath("stable"), key, 1))
		if out, err := dnf.Run("makecache"); err != nil {
			t.Fatalf("dnf makecache on an empty channel: %v\n%s", err, out)
		}
	}
}

func TestByHashKeepsPreviousIndexes(t *testing.T) {
	work := t.TempDir()
	root := filepath.Join(work, "repos")
	pub := openPublisher(t, root, kilntest.Signer(t))
	a := read(t, repotest.GenDeb(t, work, "alpha", "1.0-1", "amd64"))
	b := read(t, repotest.GenDeb(t, work, "beta", "1.0-1", "amd64"))
	dir := "apt/debian/dists/bookworm/main/binary-amd64"
	served := filepath.Join(root, "dev/current", dir)
	publish(t, pub, "dev", repo.TargetContents{Target: bookwormAmd64, Packages: []*pkgmeta.Package{a}})
	old, err := os.ReadFile(filepath.Join(served, "Packages.xz"))
	if err != nil {
		t.Fatal(err)
	}
	oldSum := sha256.Sum256(old)
	oldHash := hex.EncodeToString(oldSum[:])
	publish(t, pub, "dev", repo.TargetContents{Target: bookwormAmd64, Packages: []*pkgmeta.Package{a, b}})
	entries, err := os.ReadDir(filepath.Join(served, "by-hash/SHA256"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 6 {
		t.Errorf("by-hash holds %d files, want this version's 3 and the previous version's 3", len(entries))
	}
	// A client holding the old InRelease still gets the old Packages.xz.
	srv := serve(t, root)
	resp, err := srv.Client().Get(srv.URL + "/repos/dev/" + dir + "/by-hash/SHA256/" + oldHash)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("previous Packages.xz by hash: status %d", resp.StatusCode)
	}
	// One version later it is gone.
	publish(t, pub, "dev", repo.TargetContents{Target: bookwormAmd64, Packages: []*pkgmeta.Package{b}})
	if _, err := os.Stat(filepath.Join(served, "by-hash/SHA256", oldHash)); !os.IsNotExist(err) {
		t.Errorf("by-hash kept an index two versions old: %v", err)
	}
}

func TestRepodataKeepsPreviousDataFiles(t *testing.T) {
	work := t.TempDir()
	root := filepath.Join(work, "repos")
	pub := openPublisher(t, root, kilntest.Signer(t))
	a := read(t, repotest.BuildRPM(t, work, repotest.RPM{Name: "alpha", Version: "1", Release: "1"}))
	b := read(t, repotest.BuildRPM(t, work, repotest.RPM{Name: "beta", Version: "1", Release: "1"}))
	repodata := filepath.Join(root, "dev/current", centos9.Dir(), "repodata")
	list := func() []string {
		found, _ := filepath.Glob(filepath.Join(repodata, "*.xml.gz"))
		for i := range found {
			found[i] = filepath.Base(found[i])
		}
		return found
	}
	publish(t, pub, "dev", repo.TargetContents{Target: centos9, Packages: []*pkgmeta.Package{a}})
	first := list()
	publish(t, pub, "dev", repo.TargetContents{Target: centos9, Packages: []*pkgmeta.Package{a, b}})
	second := list()
	if len(first) != 3 || len(second) != 6 {
		t.Fatalf("repodata files: first %v, second %v", first, second)
	}
	for _, f := range first {
		if !slices.Contains(second, f) {
			t.Errorf("%s from the previous repomd.xml is gone", f)
		}
	}
	publish(t, pub, "dev", repo.TargetContents{Target: centos9, Packages: []*pkgmeta.Package{b}})
	third := list()
	for _, f := range first {
		if slices.Contains(third, f) {
			t.Errorf("%s kept two versions on", f)
		}
	}
}

// A Publisher must notice when another process's Prune removed pool files
// it still remembers, and link them again when they come back.
func TestPruneByAnotherProcess(t *testing.T) {
	work := t.TempDir()
	root := filepath.Join(work, "repos")
	s := kilntest.Signer(t)
	opts := repo.Options{KeepVersions: 1}
	a, err := repo.Open(root, s, opts)
	if err != nil {
		t.Fatal(err)
	}
	b, err := repo.Open(root, s, opts)
	if err != nil {
		t.Fatal(err)
	}
	x := read(t, repotest.GenDeb(t, work, "xpkg", "1.0-1", "amd64"))
	y := read(t, repotest.GenDeb(t, work, "ypkg", "1.0-1", "amd64"))
	publish(t, a, "dev", repo.TargetContents{Target: bookwormAmd64, Packages: []*pkgmeta.Package{x}})
	publish(t, b, "dev", repo.TargetContents{Target: bookwormAmd64, Packages: []*pkgmeta.Package{y}})
	if err := b.Prune(context.Background(), "dev"); err != nil {
		t.Fatal(err)
	}
	publish(t, a, "dev", repo.TargetContents{Target: bookwormAmd64, Packages: []*pkgmeta.Package{x, y}})
	m, err := a.Manifest("dev", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range m.Targets[0].Packages {
		if _, err := os.Stat(filepath.Join(root, "dev/current", e.Path)); err != nil {
			t.Errorf("%s listed but not served: %v", e.Path, err)
		}
	}
	verifyChannel(t, root, "dev", s.PublicKey(t))
}

func TestRollbackPruneRetention(t *testing.T) {
	work := t.TempDir()
	root := filepath.Join(work, "repos")
	s := kilntest.Signer(t)
	pub, err := repo.Open(root, s, repo.Options{KeepVersions: 3, KeepPackageVersions: 2})
	if err != nil {
		t.Fatal(err)
	}
	var pkgs []*pkgmeta.Package
	var ids []string
	for i := 1; i <= 4; i++ {
		pkgs = append(pkgs, read(t, repotest.BuildRPM(t, work, repotest.RPM{Name: "hello", Version: fmt.Sprintf("1.%d", i), Release: "1"})))
		v := publish(t, pub, "dev", repo.TargetContents{Target: centos9, Packages: pkgs})
		ids = append(ids, v.ID)
		if i == 3 && (len(v.Dropped) != 1 || !strings.Contains(v.Dropped[0], "1.1-1")) {
			t.Errorf("publish 3 dropped %v, want hello 1.1-1", v.Dropped)
		}
	}
	m, err := pub.Manifest("dev", "")
	if err != nil {
		t.Fatal(err)
	}
	var served []string
	for _, e := range m.Targets[0].Packages {
		served = append(served, e.Version)
	}
	if strings.Join(served, ",") != "1.4-1,1.3-1" {
		t.Errorf("retention kept %v, want the newest two", served)
	}
	vs, err := pub.Versions("dev")
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 3 || vs[0].ID != ids[3] || !vs[0].Current || vs[2].ID != ids[1] {
		t.Fatalf("versions after prune: %+v", vs)
	}
	oldest := filepath.Join(root, ".store", pkgs[0].SHA256[:2], pkgs[0].SHA256)
	if _, err := os.Stat(oldest); err != nil {
		t.Errorf("hello 1.1 is still in kept version %s but not in the store: %v", ids[1], err)
	}
	v, err := pub.Rollback(context.Background(), "dev")
	if err != nil || v.ID != ids[2] || currentID(t, root, "dev") != ids[2] {
		t.Fatalf("rollback: %+v %v", v, err)
	}
	verifyChannel(t, root, "dev", s.PublicKey(t))
	if _, err := pub.Rollback(context.Background(), "dev"); err != nil {
		t.Fatal(err)
	}
	if _, err := pub.Rollback(context.Background(), "dev"); !errors.Is(err, repo.ErrNoVersion) {
		t.Errorf("rollback past the oldest kept version: %v", err)
	}
	// A publish after a rollback builds on the wanted state and numbers on.
	v = publish(t, pub, "dev", repo.TargetContents{Target: centos9, Packages: pkgs})
	if v.ID != "v000005" {
		t.Errorf("next version %s", v.ID)
	}
	// That publish dropped the last version holding hello 1.1; Prune
	// collects its pool file and store object.
	if _, err := os.Stat(oldest); err != nil {
		t.Errorf("publish collected the store before Prune: %v", err)
	}
	if err := pub.Prune(context.Background(), "dev"); err != nil {
		t.Fatal(err)
	}
	verifyChannel(t, root, "dev", s.PublicKey(t))
	if _, err := os.Stat(oldest); !os.IsNotExist(err) {
		t.Errorf("hello 1.1 still stored after its last version was pruned: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "dev", ids[1])); !os.IsNotExist(err) {
		t.Errorf("version %s not pruned: %v", ids[1], err)
	}
}

func TestBadInputChangesNothing(t *testing.T) {
	work := t.TempDir()
	root := filepath.Join(work, "repos")
	s := kilntest.Signer(t)
	pub := openPublisher(t, root, s)
	good := read(t, repotest.BuildDeb(t, work, repotest.Deb{Name: "hello", Version: "1.0-1", Arch: "amd64"}))
	publish(t, pub, "dev", repo.TargetContents{Target: bookwormAmd64, Packages: []*pkgmeta.Package{good}})
	before := currentID(t, root, "dev")

	arm := read(t, repotest.BuildDeb(t, work, repotest.Deb{Name: "armonly", Version: "1.0-1", Arch: "arm64"}))
	escape := *good
	escape.FileName = "../../../etc/evil.deb"
	badSource := *good
	badSource.Source = "../x"
	changed := read(t, repotest.BuildDeb(t, work, repotest.Deb{Name: "changed", Version: "1.0-1", Arch: "amd64"}))
	if err := os.WriteFile(changed.Path, []byte("not what was uploaded"), 0o644); err != nil {
		t.Fatal(err)
	}
	rpm := read(t, repotest.BuildRPM(t, work, repotest.RPM{Name: "hello", Version: "1", Release: "1"}))
	failing := kilntest.Signer(t)
	failing.Fail = errors.New("agent locked")
	tests := []struct {
		name    string
		signer  repo.Signer
		channel string
		targets []repo.TargetContents
		want    error
	}{
		{"arch mismatch", s, "dev", []repo.TargetContents{{Target: bookwormAmd64, Packages: []*pkgmeta.Package{good, arm}}}, pkgmeta.ErrMismatch},
		{"format mismatch", s, "dev", []repo.TargetContents{{Target: bookwormAmd64, Packages: []*pkgmeta.Package{rpm}}}, pkgmeta.ErrMismatch},
		{"file name escape", s, "dev", []repo.TargetContents{{Target: bookwormAmd64, Packages: []*pkgmeta.Package{&escape}}}, pkgmeta.ErrUnsafeName},
		{"source escape", s, "dev", []repo.TargetContents{{Target: bookwormAmd64, Packages: []*pkgmeta.Package{&badSource}}}, repo.ErrInvalid},
		{"channel escape", s, "../dev", []repo.TargetContents{{Target: bookwormAmd64}}, pkgmeta.ErrUnsafeName},
		{"target escape", s, "dev", []repo.TargetContents{{Target: repo.Target{Distro: "..", Version: "x", Arch: "amd64", Format: pkgmeta.Deb, Key: "k"}}}, pkgmeta.ErrUnsafeName},
		{"file changed since upload", s, "dev", []repo.TargetContents{{Target: bookwormAmd64, Packages: []*pkgmeta.Package{good, changed}}}, repo.ErrChecksum},
		{"signer fails", failing, "dev", []repo.TargetContents{{Target: bookwormAmd64, Packages: []*pkgmeta.Package{good}}}, failing.Fail},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := openPublisher(t, root, tt.signer)
			_, err := p.Publish(context.Background(), tt.channel, repo.ChannelContents{Targets: tt.targets})
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			t.Logf("refused: %v", err)
			if got := currentID(t, root, "dev"); got != before {
				t.Errorf("current moved from %s to %s", before, got)
			}
			noTempDirs(t, root, "dev")
			verifyChannel(t, root, "dev", s.PublicKey(t))
		})
	}
}

func TestConcurrentPublishesSerialize(t *testing.T) {
	work := t.TempDir()
	root := filepath.Join(work, "repos")
	s := kilntest.Signer(t)
	// Two publishers on one root stand for two processes: only the lock
	// file serializes them.
	pubs := []*repo.Publisher{openPublisher(t, root, s), openPublisher(t, root, s)}
	var pkgs []*pkgmeta.Package
	for i := range 8 {
		pkgs = append(pkgs, read(t, repotest.BuildDeb(t, work, repotest.Deb{Name: fmt.Sprintf("pkg%d", i), Version: "1.0-1", Arch: "amd64"})))
	}
	var wg sync.WaitGroup
	ids := make([]string, len(pkgs))
	errs := make([]error, len(pkgs))
	for i := range pkgs {
		wg.Go(func() {
			v, err := pubs[i%2].Publish(context.Background(), "dev", repo.ChannelContents{Targets: []repo.TargetContents{{Target: bookwormAmd64, Packages: pkgs[:i+1]}}})
			ids[i], errs[i] = v.ID, err
		})
	}
	wg.Wait()
	seen := map[string]bool{}
	for i, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
		if seen[ids[i]] {
			t.Errorf("version %s published twice", ids[i])
		}
		seen[ids[i]] = true
	}
	verifyChannel(t, root, "dev", s.PublicKey(t))
}
