package steps

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// standInPbuilder is NOT pbuilder: it records each invocation (the
// subcommand and the whole argument vector) and fakes the effect: create
// and update write the --basetgz file (slowly, so concurrent builds
// overlap), build writes a .deb into --buildresult and keeps a copy of the
// hook directory it was given. The real pbuilder runs in the e2e tests
// (go test -tags e2e ./e2e), which need a Debian mirror and minutes.
const standInPbuilder = `#!/bin/sh
set -e
echo "$*" >> "$STANDIN_LOG"
cmd=$1; shift
while [ $# -gt 0 ]; do
  case "$1" in
    --basetgz) base=$2; shift ;;
    --buildresult) result=$2; shift ;;
    --hookdir) hooks=$2; shift ;;
  esac
  shift
done
case "$cmd" in
  create)
    if [ -n "$STANDIN_MIRROR_DOWN" ]; then
      echo "I: Retrieving InRelease"
      echo "E: Failed getting release file http://mirror.invalid/debian/dists/bookworm/Release"
      exit 1
    fi
    sleep 0.3; echo base > "$base" ;;
  update) sleep 0.3; echo updated >> "$base" ;;
  build) echo deb > "$result/pkg_1.0_amd64.deb"; [ -z "$hooks" ] || cp -r "$hooks" "$STANDIN_LOG.hooks" ;;
esac
`

func standIn(t *testing.T, name, script string) (log string) {
	t.Helper()
	return standIns(t, map[string]string{name: script})
}

// standIns puts stand-in programs first on PATH; they all append to the
// one log it returns.
func standIns(t *testing.T, scripts map[string]string) (log string) {
	t.Helper()
	bin := t.TempDir()
	for name, script := range scripts {
		writeFile(t, filepath.Join(bin, name), script)
		if err := os.Chmod(filepath.Join(bin, name), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	log = filepath.Join(t.TempDir(), "standin.log")
	t.Setenv("STANDIN_LOG", log)
	return log
}

func standInCalls(t *testing.T, log string) []string {
	t.Helper()
	b, err := os.ReadFile(log)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var calls []string
	for l := range strings.SplitSeq(strings.TrimSpace(string(b)), "\n") {
		calls = append(calls, strings.Fields(l)[0])
	}
	return calls
}

func pbuilderEnv(t *testing.T, cache string) *Env {
	t.Helper()
	env, _ := newTestEnv(t, jobFor("debian/bookworm/amd64", "apt"))
	env.CacheDir = cache
	writeFile(t, filepath.Join(env.Workspace, "dist/source/pkg_1.0.dsc"), standInDSC)
	writeFile(t, filepath.Join(env.Workspace, "dist/source/pkg_1.0.tar.xz"), "tar")
	env.Props.Set("dsc", "dist/source/pkg_1.0.dsc")
	return env
}

// standInDSC is the source package the stand-in builders are given: a
// well-formed .dsc (the steps read it as the master does) of a
// three-byte tarball beside it.
const standInDSC = "Source: pkg\nVersion: 1.0\nArchitecture: any\nMaintainer: A B <a@b.example>\n" +
	"Files:\n 0123456789abcdef0123456789abcdef 3 pkg_1.0.tar.xz\n" +
	"Checksums-Sha256:\n 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef 3 pkg_1.0.tar.xz\n"

// One base per (distro, codename, arch): created once although several
// builds want it at the same moment, then reused while fresh, updated
// when older than max_age.
func TestPbuilderBaseCache(t *testing.T) {
	log := standIn(t, "pbuilder", standInPbuilder)
	cache := t.TempDir()
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		env := pbuilderEnv(t, cache)
		wg.Go(func() { _, errs[i] = runStep(t, Pbuilder{}, env, nil) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(standInCalls(t, log), " "); got != "create build build build build" {
		t.Fatalf("calls %q, want one create then four builds", got)
	}
	base := filepath.Join(cache, "pbuilder/debian-bookworm-amd64/base.tgz")
	old := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(base, old, old); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		maxAge, want string
	}{
		{"3h", "build"},        // two hours old, still fresh
		{"1h", "update build"}, // stale: updated in place
		{"1h", "build"},        // the update made it fresh again
	} {
		before := len(standInCalls(t, log))
		if o, err := runStep(t, Pbuilder{}, pbuilderEnv(t, cache), map[string]string{"max_age": tt.maxAge}); err != nil {
			t.Fatalf("max_age %s: %v (%s)", tt.maxAge, err, o.Summary)
		}
		if got := strings.Join(standInCalls(t, log)[before:], " "); got != tt.want {
			t.Errorf("max_age %s: calls %q, want %q", tt.maxAge, got, tt.want)
		}
	}
	if b, _ := os.ReadFile(base); string(b) != "base\nupdated\n" {
		t.Errorf("base after update = %q", b)
	}
	if m, _ := filepath.Glob(base + ".new"); len(m) > 0 {
		t.Errorf("left behind %v", m)
	}
}

func TestPbuilderDevChannel(t *testing.T) {
	log := standIn(t, "pbuilder", standInPbuilder)
	const key = "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nxsBNBGc=\n-----END PGP PUBLIC KEY BLOCK-----\n"
	env := pbuilderEnv(t, t.TempDir())
	env.Job.RepoURL = "http://farm:8010/repos/dev/apt/debian"
	env.Job.RepoKey = key
	if o, err := runStep(t, Pbuilder{}, env, nil); err != nil {
		t.Fatalf("%v (%s)", err, o.Summary)
	}
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	build := lines[len(lines)-1]
	for _, want := range []string{"--buildresult " + filepath.Join(env.Workspace, "dist"), "--hookdir " + filepath.Join(env.Workspace, ".kiln/pbuilder-hooks"), filepath.Join(env.Workspace, "dist/source/pkg_1.0.dsc")} {
		if !strings.Contains(build, want) {
			t.Errorf("pbuilder %s\nlacks %q", build, want)
		}
	}
	hook, err := os.ReadFile(log + ".hooks/D10kiln-dev-channel")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"deb [signed-by=/etc/apt/keyrings/kiln-dev.asc] http://farm:8010/repos/dev/apt/debian bookworm main",
		strings.TrimSpace(key),
		"apt-get update",
	} {
		if !strings.Contains(string(hook), want) {
			t.Errorf("hook lacks %q:\n%s", want, hook)
		}
	}
}

func TestPbuilderBadInput(t *testing.T) {
	standIn(t, "pbuilder", standInPbuilder)
	const key = "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nxsBNBGc=\n-----END PGP PUBLIC KEY BLOCK-----\n"
	tests := []struct {
		name       string
		setup      func(env *Env)
		with       map[string]string
		summary    string
		mirrorDown bool
	}{
		{"mirror unreachable", func(*Env) {}, map[string]string{"mirror": "http://mirror.invalid/debian"}, "pbuilder create: tool failed: shell pbuilder: exit status 1: E: Failed getting release file", true},
		{"no dsc", func(env *Env) { env.Props = NewProperties(env.Job, "w1") }, nil, "run the source step first", false},
		{"repo URL with a quote", func(env *Env) { env.Job.RepoURL, env.Job.RepoKey = "http://x/' >/etc/passwd", key }, nil, "cannot go into a sources line", false},
		{"key not a key", func(env *Env) { env.Job.RepoURL, env.Job.RepoKey = "http://x/repo", "hello" }, nil, "not an armored OpenPGP public key", false},
		{"bad max_age", func(*Env) {}, map[string]string{"max_age": "old"}, "want a positive duration", false},
		{"unknown distro", func(env *Env) { env.Props.Set("distro", "plan9") }, nil, "no default mirror for plan9", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.mirrorDown {
				t.Setenv("STANDIN_MIRROR_DOWN", "1")
			}
			env := pbuilderEnv(t, t.TempDir())
			tt.setup(env)
			o, err := runStep(t, Pbuilder{}, env, tt.with)
			if err == nil || !strings.Contains(o.Summary, tt.summary) {
				t.Fatalf("err = %v, summary %q, want it to say %q", err, o.Summary, tt.summary)
			}
			if m, _ := filepath.Glob(filepath.Join(env.CacheDir, "pbuilder/*/base.tgz*")); len(m) > 0 {
				t.Errorf("a failed build left %v in the cache", m)
			}
		})
	}
}

// standInPbuilderDpkg is NOT pbuilder either, and needs no chroot: for
// "build" it does on the host what pbuilder build does inside one
// (pbuilder 0.231, /usr/lib/pbuilder/pbuilder-buildpackage): copy the .dsc
// and the files it lists into a build place, unpack it with dpkg-source
// -x, run dpkg-buildpackage -us -uc there, write the source-only .changes
// (SOURCE_ONLY_CHANGES=yes, pbuilder's default) and copy into
// --buildresult each .changes and only the files the .changes list. So
// the result directory of a revision -2 or later upload lacks the orig
// tarball exactly as real pbuilder's does. create and update just write
// the base file.
const standInPbuilderDpkg = `#!/bin/sh
set -e
echo "$*" >> "$STANDIN_LOG"
cmd=$1; shift
while [ $# -gt 0 ]; do
  case "$1" in
    --basetgz) base=$2; shift ;;
    --buildresult) result=$2; shift ;;
    --hookdir) shift ;;
    *) dsc=$1 ;;
  esac
  shift
done
case "$cmd" in
  create|update) echo base > "$base"; exit 0 ;;
esac
files() { sed -n '/^Files:/,/^[^ ]/p' "$1" | awk -v n="$2" 'NF==n {print $n}'; }
place=$(mktemp -d)
cp "$dsc" "$place/"
for f in $(files "$dsc" 3); do cp "$(dirname "$dsc")/$f" "$place/"; done
name=$(basename "$dsc" .dsc)
cd "$place"
dpkg-source -x "$name.dsc" build
cd build
dpkg-buildpackage -us -uc
dpkg-genchanges -S > "../${name}_source.changes"
cd ..
for c in *.changes; do
  cp "$c" "$result/"
  for f in $(files "$c" 5); do cp "$f" "$result/"; done
done
rm -rf "$place"
`

// A rebuild asks pbuilder for a binNMU of the architecture-dependent
// packages; real pbuilder runs it in e2e's rebuild story.
func TestPbuilderRebuildArgs(t *testing.T) {
	log := standIn(t, "pbuilder", standInPbuilder)
	env := pbuilderEnv(t, t.TempDir())
	env.Job.Published = []string{"1.0"}
	o, err := runStep(t, Pbuilder{}, env, nil)
	if err != nil {
		t.Fatalf("%v (%s)", err, o.Summary)
	}
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	for _, want := range []string{"--bin-nmu-version 1 ", "--debbuildopts -B ", "--bin-nmu Rebuild of 1.0 by kiln"} {
		if !strings.Contains(lines[len(lines)-1], want) {
			t.Errorf("pbuilder %s\nlacks %q", lines[len(lines)-1], want)
		}
	}
	if v, _ := env.Props.Get("binary_version"); v != "1.0+b1" || !strings.Contains(o.Summary, "rebuild +b1") {
		t.Errorf("binary_version %q, summary %q", v, o.Summary)
	}
}
