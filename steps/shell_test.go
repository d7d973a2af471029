package steps

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kiln-build/kiln/protocol"
)

func TestShell(t *testing.T) {
	tests := []struct {
		name      string
		props     map[string]string
		spec      protocol.Step
		wantErr   bool
		summary   string
		wantLines []string
		wantProps map[string]string
	}{
		{
			name:      "argv with property and env",
			props:     map[string]string{"greeting": "hello"},
			spec:      protocol.Step{Command: []string{"sh", "-c", `echo "$1 $WHO"`, "sh", "${prop.greeting}"}, Env: map[string]string{"WHO": "${prop.component}"}},
			summary:   "exit 0",
			wantLines: []string{"hello libgrace"},
		},
		{
			name:      "script stops at first failure",
			spec:      protocol.Step{Script: "echo one\nfalse\necho two"},
			wantErr:   true,
			summary:   "exit 1",
			wantLines: []string{"one"},
		},
		{
			name:      "set_property from output, used by the same build later",
			spec:      protocol.Step{Script: "echo 'Version: 1.2.3-4'\necho done >&2", SetProperty: map[string]string{"version": `^Version: (\S+)$`}},
			summary:   "exit 0",
			wantLines: []string{"Version: 1.2.3-4", "done"},
			wantProps: map[string]string{"version": "1.2.3-4"},
		},
		{
			name:    "undefined property fails before running",
			spec:    protocol.Step{Script: "echo ${prop.nope}"},
			wantErr: true,
			summary: "undefined property nope",
		},
		{
			name:    "set_property needs exactly one group",
			spec:    protocol.Step{Script: "true", SetProperty: map[string]string{"v": `(a)(b)`}},
			wantErr: true,
			summary: "exactly one group",
		},
		{
			name:    "workdir may not leave the workspace",
			spec:    protocol.Step{Script: "true", Workdir: "../.."},
			wantErr: true,
			summary: "escapes the workspace",
		},
		{
			name:    "neither command nor script",
			spec:    protocol.Step{},
			wantErr: true,
			summary: "neither command nor script",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, log := newTestEnv(t, protocol.Job{Component: "libgrace", Properties: tt.props})
			tt.spec.Type = "shell"
			out, err := Run(context.Background(), env, tt.spec)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v; log:\n%s", err, tt.wantErr, log)
			}
			if !strings.Contains(out.Summary, tt.summary) {
				t.Errorf("summary %q, want it to contain %q", out.Summary, tt.summary)
			}
			for _, l := range tt.wantLines {
				if !log.has(l) {
					t.Errorf("log lacks %q:\n%s", l, log)
				}
			}
			if log.has("two") {
				t.Errorf("script went on after a failing command:\n%s", log)
			}
			for k, want := range tt.wantProps {
				if got, _ := env.Props.Get(k); got != want {
					t.Errorf("property %s = %q, want %q", k, got, want)
				}
			}
		})
	}
}

// A step that outlives its timeout, or whose build is cancelled, must take
// its whole process group with it, including children that ignore SIGTERM.
func TestShellKillsProcessGroup(t *testing.T) {
	tests := []struct {
		name    string
		timeout time.Duration
		cancel  time.Duration
		wantErr error
	}{
		{"timeout", 300 * time.Millisecond, 0, ErrTimeout},
		{"cancel", 0, 300 * time.Millisecond, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, log := newTestEnv(t, protocol.Job{})
			pidFile := filepath.Join(env.Workspace, "child.pid")
			script := `sh -c 'trap "" TERM; sleep 60' & echo $! > child.pid; sleep 60 & wait`
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tt.cancel > 0 {
				time.AfterFunc(tt.cancel, cancel)
			}
			start := time.Now()
			_, err := Shell{}.Run(ctx, env, protocol.Step{Script: script, Timeout: tt.timeout})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v; log:\n%s", err, tt.wantErr, log)
			}
			if d := time.Since(start); d > killGrace+5*time.Second {
				t.Errorf("took %s to stop", d)
			}
			raw, err := os.ReadFile(pidFile)
			if err != nil {
				t.Fatal(err)
			}
			pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
			if err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(3 * time.Second)
			for alive(pid) {
				if time.Now().After(deadline) {
					t.Fatalf("child %d survived the step", pid)
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}

// alive reports whether pid runs; a zombie awaiting its reaper counts as dead.
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	return len(fields) > 0 && fields[0] != "Z"
}

func TestLookupUnknown(t *testing.T) {
	_, err := Lookup("teleport")
	if !errors.Is(err, ErrUnknownStep) || !strings.Contains(err.Error(), `"teleport"`) {
		t.Fatalf("err = %v, want ErrUnknownStep naming teleport", err)
	}
	for _, typ := range []string{"checkout", "shell", "nfpm", "upload", "source", "pbuilder", "mock", "rpmbuild", "dpkg", "lintian", "rpmlint"} {
		if _, err := Lookup(typ); err != nil {
			t.Errorf("Lookup(%s): %v", typ, err)
		}
	}
}
