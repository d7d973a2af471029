package steps

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"syscall"
	"time"

	"github.com/kiln-build/kiln/protocol"
)

// Shell runs a command (argv) or a script (/bin/sh -e) in the workspace.
//
// The command runs in its own process group so that a timeout or a cancel
// kills everything it started, not just the direct child; whatever is left
// of the group when the command exits is killed too, so no build leaks
// processes into the next.
type Shell struct{}

// ErrTimeout is returned when a step ran past its timeout.
var ErrTimeout = errors.New("step timed out")

// killGrace is how long a cancelled command gets between SIGTERM and SIGKILL.
const killGrace = 3 * time.Second

func (Shell) Run(ctx context.Context, env *Env, spec protocol.Step) (Outcome, error) {
	argv, err := shellArgv(spec)
	if err != nil {
		return Outcome{Summary: err.Error()}, err
	}
	dir, err := env.Path(spec.Workdir)
	if err != nil {
		return Outcome{Summary: err.Error()}, fmt.Errorf("shell workdir: %w", err)
	}
	setters, err := compileSetters(spec.SetProperty)
	if err != nil {
		return Outcome{Summary: err.Error()}, err
	}

	runCtx := ctx
	if spec.Timeout > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, spec.Timeout)
		defer cancel()
	}

	out := newLineWriter(func(line string) {
		env.Log.Line(line)
		for _, s := range setters {
			if m := s.re.FindStringSubmatch(line); m != nil {
				env.Props.Set(s.name, m[1])
			}
		}
	})
	cmd := exec.CommandContext(runCtx, argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), envList(spec.Env)...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	// After SIGTERM the group gets killGrace; then Wait kills the leader
	// and stops waiting for output pipes held by stray children.
	cmd.WaitDelay = killGrace

	if err := cmd.Start(); err != nil {
		return Outcome{Summary: fmt.Sprintf("cannot start %s: %v", argv[0], err)}, fmt.Errorf("shell start: %w", err)
	}
	pgid := cmd.Process.Pid
	done := make(chan struct{})
	killer := make(chan struct{})
	go func() {
		defer close(killer)
		select {
		case <-runCtx.Done():
			select {
			case <-done:
			case <-time.After(killGrace):
				_ = syscall.Kill(-pgid, syscall.SIGKILL)
			}
		case <-done:
		}
	}()
	err = cmd.Wait()
	close(done)
	<-killer
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	out.Flush()

	switch {
	case errors.Is(runCtx.Err(), context.DeadlineExceeded) && ctx.Err() == nil:
		return Outcome{Summary: fmt.Sprintf("timed out after %s", spec.Timeout)}, fmt.Errorf("shell %s: %w after %s", argv[0], ErrTimeout, spec.Timeout)
	case ctx.Err() != nil:
		return Outcome{Summary: "cancelled"}, fmt.Errorf("shell %s: %w", argv[0], ctx.Err())
	case err != nil:
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return Outcome{Summary: exitSummary(exit)}, fmt.Errorf("shell %s: %w", argv[0], err)
		}
		return Outcome{Summary: err.Error()}, fmt.Errorf("shell %s: %w", argv[0], err)
	}
	return Outcome{Summary: "exit 0"}, nil
}

func shellArgv(spec protocol.Step) ([]string, error) {
	switch {
	case len(spec.Command) > 0 && spec.Script != "":
		return nil, errors.New("shell: give command or script, not both")
	case len(spec.Command) > 0:
		return spec.Command, nil
	case spec.Script != "":
		return []string{"/bin/sh", "-e", "-c", spec.Script}, nil
	}
	return nil, errors.New("shell: neither command nor script given")
}

type setter struct {
	name string
	re   *regexp.Regexp
}

func compileSetters(m map[string]string) ([]setter, error) {
	out := make([]setter, 0, len(m))
	for name, expr := range m {
		re, err := regexp.Compile(expr)
		if err != nil {
			return nil, fmt.Errorf("set_property %s: %w", name, err)
		}
		if re.NumSubexp() != 1 {
			return nil, fmt.Errorf("set_property %s: regexp %q must have exactly one group, has %d", name, expr, re.NumSubexp())
		}
		out = append(out, setter{name, re})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

func envList(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

func exitSummary(e *exec.ExitError) string {
	if ws, ok := e.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return "killed by " + ws.Signal().String()
	}
	return fmt.Sprintf("exit %d", e.ExitCode())
}
