package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kiln-build/kiln/internal/kilntest/farmtest"
	"github.com/kiln-build/kiln/master/api"
)

const ctlFarm = `
targets:
  - {distro: debian, versions: [bookworm], arches: [amd64], kind: nfpm, format: apt, tags: [nobody-has-this],
     steps: [{name: build, type: shell, command: ["true"]}]}
components:
  - {name: libfoo, git: /nonexistent/libfoo}
  - {name: app, git: /nonexistent/app, depends: [libfoo]}
workers:
  - {name: w1, credentials: w1.token}
users:
  - {name: ci, token: ci.token}
repos:
  channels: [{name: dev, key: demo}]
`

// startCtlMaster runs a real master with no workers: everything forced stays
// queued, which is what the ctl commands are tested against. A signing agent
// lets it serve the dev channel, empty.
func startCtlMaster(t *testing.T) string {
	t.Helper()
	return farmtest.StartMaster(t, farmtest.Config(ctlFarm), farmtest.File("w1.token", "tok"), farmtest.File("ci.token", "ci-secret"),
		farmtest.Signer(startCtlSigner(t))).URL
}

// startCtlSigner runs kiln signer in-process with a fresh key named demo,
// the key of ctlFarm's channel, until the test ends; it returns the socket.
func startCtlSigner(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	ctx, stop := context.WithCancel(context.Background())
	if out, err := kiln(ctx, "signer", "genkey", "--name", "demo", "--type", "ed25519", "--out", dir, "--no-passphrase"); err != nil {
		t.Fatalf("signer genkey: %v\n%s", err, out)
	}
	sock := filepath.Join(dir, "signer.sock")
	done := make(chan error, 1)
	go func() {
		out, err := kiln(ctx, "signer", "--key", "demo="+filepath.Join(dir, "demo.sec.asc"), "--socket", sock)
		if err != nil {
			err = fmt.Errorf("%w\n%s", err, out)
		}
		done <- err
	}()
	t.Cleanup(func() {
		stop()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("signer: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("signer did not stop")
		}
	})
	waitSocket(t, sock, done)
	return sock
}

func TestCtlAgainstARealMaster(t *testing.T) {
	url := startCtlMaster(t)
	var forced api.ForceResult
	t.Setenv("KILN_TOKEN", "")
	if _, errOut, code := runKiln("ctl", "--master", url, "force", "libfoo"); code != 1 || !strings.Contains(errOut, "token") {
		t.Errorf("force without a token: exit %d, %q; want a refusal naming the token", code, errOut)
	}
	if _, errOut, code := runKiln("ctl", "--master", url, "--token", "wrong", "force", "libfoo"); code != 1 || !strings.Contains(errOut, "names no user") {
		t.Errorf("force with a wrong token: exit %d, %q", code, errOut)
	}
	out, errOut, code := runKiln("ctl", "--master", url, "--token", "ci-secret", "--json", "force", "libfoo")
	if code != 0 || json.Unmarshal([]byte(out), &forced) != nil || len(forced.Builds) != 2 {
		t.Fatalf("force --json: code %d out %q err %q", code, out, errOut)
	}
	lib, app := itoa(forced.Builds[0]), itoa(forced.Builds[1])

	t.Setenv("KILN_MASTER", url)
	t.Setenv("KILN_TOKEN", "ci-secret")
	for _, tc := range []struct {
		args []string
		code int
		want []string // substrings of stdout (or stderr when code != 0)
	}{
		{[]string{"ctl", "builds"}, 0, []string{"BUILDER", "libfoo@debian/bookworm/amd64", "pending", "(2 of 2)"}},
		{[]string{"ctl", "builders"}, 0, []string{"BUILDER", "LATEST", "app@debian/bookworm/amd64", "pending", "(2 of 2)"}},
		{[]string{"ctl", "builders", "--status", "never"}, 0, []string{"(0 of 0)"}},
		{[]string{"ctl", "builders", "--status", "bogus"}, 1, []string{"status"}},
		{[]string{"ctl", "builds", "--component", "app"}, 0, []string{"app@debian/bookworm/amd64", "(1 of 1)"}},
		{[]string{"ctl", "builds", "--status", "nonsense"}, 1, []string{"status"}},
		{[]string{"ctl", "show", lib}, 0, []string{"builder", "libfoo@debian/bookworm/amd64", "status", "pending", "forced"}},
		{[]string{"ctl", "explain", lib}, 0, []string{"no connected worker has tags nobody-has-this"}},
		{[]string{"ctl", "explain", app}, 0, []string{"waits for dependency libfoo@debian/bookworm/amd64"}},
		{[]string{"ctl", "workers"}, 0, []string{"NAME", "STATE"}},
		{[]string{"ctl", "changes"}, 0, []string{"libfoo", "forced"}},
		{[]string{"ctl", "--json", "changes", "--component", "libfoo"}, 0, []string{`"kind": "force"`, `"user": "ci"`, `"total": 1`}},
		{[]string{"ctl", "force", "nosuch"}, 1, []string{`unknown component "nosuch"`}},
		{[]string{"ctl", "show", "99999"}, 1, []string{"not found"}},
		{[]string{"ctl", "show", "x"}, 1, []string{"bad build id"}},
		{[]string{"ctl", "cancel", app}, 0, []string{"cancelled"}},
		{[]string{"ctl", "cancel", app}, 1, []string{"already finished"}},
		{[]string{"ctl", "rebuild", app}, 0, []string{"new build"}},
		{[]string{"ctl", "log", lib}, 0, nil},
		{[]string{"ctl", "repo", "ls", "dev"}, 0, []string{"TARGET", "PACKAGE", "VERSION", "debian/bookworm/amd64", "(none)"}},
		{[]string{"ctl", "repo", "ls", "dev", "--target", "centos/9/x86_64"}, 1, []string{`no target "centos/9/x86_64"`}},
		{[]string{"ctl", "repo", "client-config", "dev", "debian/bookworm/amd64"}, 0, []string{"URIs: " + url + "/repos/dev/apt/debian", "Signed-By:"}},
	} {
		out, errOut, code := runKiln(tc.args...)
		text := out
		if tc.code != 0 {
			text = errOut
		}
		if code != tc.code {
			t.Errorf("%v: exit %d, want %d (out %q err %q)", tc.args, code, tc.code, out, errOut)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(text, w) {
				t.Errorf("%v: %q lacks %q", tc.args, text, w)
			}
		}
	}

	// repo client-config prints what the API answers, unchanged.
	cc, _, _ := runKiln("ctl", "repo", "client-config", "dev", "debian/bookworm/amd64")
	resp, err := http.Get(url + "/api/v1/repos/dev/client-config?target=debian/bookworm/amd64")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || cc != string(answer) {
		t.Errorf("ctl repo client-config printed\n%s\nthe API (HTTP %d) answers\n%s", cc, resp.StatusCode, answer)
	}
}

func itoa(id int64) string { return strconv.FormatInt(id, 10) }
