package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func runKiln(args ...string) (stdout, stderr string, code int) {
	var out, errOut bytes.Buffer
	cmd := newRootCmd()
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	if err := cmd.Execute(); err != nil {
		code = 1
		var ee *exitError
		if errors.As(err, &ee) {
			code = ee.code
		}
		errOut.WriteString("kiln: " + err.Error() + "\n")
	}
	return out.String(), errOut.String(), code
}

func TestCheckconfig(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		code       int
		stdout     []string // substrings, in order
		stderr     []string
		stdoutNone bool
	}{
		{
			name:   "summary",
			args:   []string{"checkconfig", "../../configs/demo.yaml"},
			stdout: []string{"demo.yaml: OK", "components", "3", "targets", "2", "builders", "6", "dependency edges", "2", "longest chain", "2: libgrace@centos/9/x86_64 → opencore@centos/9/x86_64"},
		},
		{
			name:   "directory",
			args:   []string{"checkconfig", "../../builders/testdata/merge/ok"},
			stdout: []string{"merge/ok: OK", "components", "2", "builders", "4", "channels", "dev, stable"},
		},
		{
			name:   "list",
			args:   []string{"checkconfig", "--list", "../../configs/demo.yaml"},
			stdout: []string{"kiln-hello@centos/9/x86_64\n", "libgrace@centos/9/x86_64\n", "libgrace@debian/bookworm/amd64\n", "opencore@centos/9/x86_64\n", "opencore@debian/bookworm/amd64\n"},
		},
		{
			name:   "explain",
			args:   []string{"checkconfig", "--explain", "opencore@debian/bookworm/amd64", "../../configs/demo.yaml"},
			stdout: []string{"builder", "opencore@debian/bookworm/amd64", "kind", "nfpm, apt", "needs", "libgrace@debian/bookworm/amd64", "needed by", "(none)", "steps", "1. checkout\n", "2. nfpm\n", "3. upload\n"},
		},
		{
			name:   "explain dependency",
			args:   []string{"checkconfig", "--explain", "libgrace@centos/9/x86_64", "../../configs/demo.yaml"},
			stdout: []string{"needs", "(none)", "needed by", "opencore@centos/9/x86_64"},
		},
		{
			name:       "explain unknown",
			args:       []string{"checkconfig", "--explain", "opencore", "../../configs/demo.yaml"},
			code:       1,
			stderr:     []string{`unknown builder "opencore"`, "opencore@centos/9/x86_64"},
			stdoutNone: true,
		},
		{
			name:       "bad config",
			args:       []string{"checkconfig", "../../builders/testdata/errors/unknown-key.yaml"},
			code:       1,
			stderr:     []string{"unknown-key.yaml:15:5: components[1].depend: unknown key \"depend\" (hint: did you mean `depends`?)", "unknown-key.yaml:18:3: master.htpp", "3 errors"},
			stdoutNone: true,
		},
		{
			name:       "cycle",
			args:       []string{"checkconfig", "../../builders/testdata/errors/cycle.yaml"},
			code:       1,
			stderr:     []string{"cycle.yaml:13:33: components[2].depends[0]: dependency cycle: a → b → c → a"},
			stdoutNone: true,
		},
		{
			name:       "unknown step type",
			args:       []string{"checkconfig", "../../builders/testdata/errors/unknown-step-type.yaml"},
			code:       1,
			stderr:     []string{`unknown-step-type.yaml:10:7: templates.release[1].type: unknown step type "sign"`, "one of checkout, dpkg, lintian"},
			stdoutNone: true,
		},
		{
			name:       "missing file",
			args:       []string{"checkconfig", "no/such/farm.yaml"},
			code:       1,
			stderr:     []string{"no/such/farm.yaml", "no such file"},
			stdoutNone: true,
		},
		{
			name:   "no argument",
			args:   []string{"checkconfig"},
			code:   1,
			stderr: []string{"accepts 1 arg"},
		},
		{
			name:   "complete --explain",
			args:   []string{"__complete", "checkconfig", "../../configs/demo.yaml", "--explain", ""},
			stdout: []string{"kiln-hello@centos/9/x86_64\n", "opencore@debian/bookworm/amd64\n", ":4\n"},
		},
		{
			name:   "list and explain",
			args:   []string{"checkconfig", "--list", "--explain", "x", "../../configs/demo.yaml"},
			code:   1,
			stderr: []string{"none of the others can be"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := runKiln(tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.code, stdout, stderr)
			}
			inOrder(t, "stdout", stdout, tt.stdout)
			inOrder(t, "stderr", stderr, tt.stderr)
			if tt.stdoutNone && stdout != "" {
				t.Errorf("stdout not empty:\n%s", stdout)
			}
		})
	}
}

func inOrder(t *testing.T, name, got string, want []string) {
	t.Helper()
	rest := got
	for _, w := range want {
		i := strings.Index(rest, w)
		if i < 0 {
			t.Errorf("%s lacks %q (in order):\n%s", name, w, got)
			return
		}
		rest = rest[i+len(w):]
	}
}
