package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/master"
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
// queued, which is what the ctl commands are tested against.
func startCtlMaster(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "farm.yaml")
	if err := os.WriteFile(cfg, []byte(ctlFarm), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, tok := range map[string]string{"w1.token": "tok", "ci.token": "ci-secret"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(tok), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	m, err := master.New(master.Options{ConfigPath: cfg, DataDir: filepath.Join(dir, "data"), HTTPAddr: "127.0.0.1:0", NATSAddr: "127.0.0.1:0",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	if err := m.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	return "http://" + m.HTTPAddr()
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
}

func itoa(id int64) string { return strconv.FormatInt(id, 10) }
