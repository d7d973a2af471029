package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/builders"
	"github.com/kiln-build/kiln/configs"
	"github.com/kiln-build/kiln/master/api"
	"github.com/kiln-build/kiln/master/api/client"
)

type demoOpts struct {
	dir   string
	http  string
	nats  string
	ready time.Duration
}

func newDemoCmd() *cobra.Command {
	o := &demoOpts{}
	cmd := &cobra.Command{
		Use:   "demo [--dir DIR]",
		Short: "Run a small demo farm on this machine: signer, master with embedded NATS, one worker",
		Long: `demo writes the demo configuration and three small components (as local git
repositories) into DIR, generates a demo signing key, then runs the real
"kiln signer", "kiln master" and "kiln worker" processes, forces a build of
every component and prints where to look. Ctrl-C stops the farm; running
demo again with the same DIR keeps its history.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runDemo(ctx, o, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.dir, "dir", ".kiln-demo", "directory for the demo farm's sources, keys and state")
	f.StringVar(&o.http, "http", "localhost:8010", "the master's HTTP address")
	f.StringVar(&o.nats, "nats", "127.0.0.1:4222", "the embedded NATS server's address")
	f.DurationVar(&o.ready, "ready-timeout", time.Minute, "how long to wait for the farm to come up")
	return cmd
}

func runDemo(ctx context.Context, o *demoOpts, out io.Writer) error {
	dir, err := filepath.Abs(o.dir)
	if err != nil {
		return fmt.Errorf("demo dir: %w", err)
	}
	var (
		configPath = filepath.Join(dir, "demo.yaml")
		dataDir    = filepath.Join(dir, "var", "kiln")
		logDir     = filepath.Join(dir, "var", "log")
		keyDir     = filepath.Join(dir, "keys")
		socket     = filepath.Join(dataDir, "signer.sock")
		tokenFile  = filepath.Join(dir, "var", "worker.token")
		userFile   = filepath.Join(dir, "var", "user.token") // user demo's API token
	)
	for _, d := range []string{dataDir, logDir, keyDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("demo: create %s: %w", d, err)
		}
	}
	if err := writeDemoFarm(dir); err != nil {
		return err
	}
	token, err := demoToken(tokenFile)
	if err != nil {
		return err
	}
	userToken, err := demoToken(userFile)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("demo: find the kiln binary: %w", err)
	}
	secretKey := filepath.Join(keyDir, "demo.sec.asc")
	if _, err := os.Stat(secretKey); errors.Is(err, fs.ErrNotExist) {
		gen := exec.CommandContext(ctx, self, "signer", "genkey", "--name", "demo", "--type", "ed25519", "--out", keyDir, "--no-passphrase")
		if msg, err := gen.CombinedOutput(); err != nil {
			return fmt.Errorf("demo: generate the demo key: %w: %s", err, msg)
		}
	}

	sup := &supervisor{logDir: logDir}
	defer sup.stop()
	if err := sup.start(ctx, "signer", nil, self, "signer", "--key", "demo="+secretKey, "--socket", socket); err != nil {
		return err
	}
	if err := waitFor(ctx, o.ready, sup, func() bool { _, err := os.Stat(socket); return err == nil }); err != nil {
		return fmt.Errorf("demo: signer did not come up (see %s): %w", sup.logPath("signer"), err)
	}
	masterEnv := []string{"KILN_WORKER_SECRET=" + token, "KILN_DEMO_USER_TOKEN=" + userToken}
	if err := sup.start(ctx, "master", masterEnv, self, "master", "--config", configPath, "--data", dataDir,
		"--http", o.http, "--nats", o.nats, "--signer", socket); err != nil {
		return err
	}
	if err := sup.start(ctx, "worker", nil, self, "worker", "--master", "nats://"+o.nats, "--name", "local",
		"--credentials", tokenFile, "--slots", "4", "--workdir", filepath.Join(dir, "var", "worker")); err != nil {
		return err
	}
	base := "http://" + o.http
	c := client.New(base, userToken) // forcing is an action: it needs a user
	if err := waitFor(ctx, o.ready, sup, func() bool { return workerConnected(ctx, c, "local") }); err != nil {
		return fmt.Errorf("demo: the farm did not come up (see %s): %w", logDir, err)
	}
	// opencore is rebuilt as libgrace's dependent, after it.
	for _, component := range []string{"libgrace", "kiln-hello"} {
		if _, err := c.Force(ctx, api.ForceRequest{Component: component}); err != nil {
			return fmt.Errorf("demo: force %s: %w", component, err)
		}
	}
	fmt.Fprintf(out, `Kiln demo farm is running (logs in %s).

  web page:      %s/
  builds:        bin/kiln ctl --master %s builds
  one build:     bin/kiln ctl --master %s show BUILD   (log: ctl log BUILD --follow)
  workers:       bin/kiln ctl --master %s workers
  repositories:  %s/repos/dev/   (apt client config: bin/kiln ctl --master %s repo client-config dev debian/bookworm/amd64)
  packages:      bin/kiln ctl --master %s repo ls dev
  force a build: KILN_TOKEN=$(cat %s) bin/kiln ctl --master %s force opencore

Ctrl-C stops the farm.
`, logDir, base, base, base, base, base, base, base, userFile, base)
	select {
	case <-ctx.Done():
		return nil
	case name := <-sup.exited:
		return fmt.Errorf("demo: %s stopped unexpectedly (see %s)", name, sup.logPath(name))
	}
}

// writeDemoFarm copies the embedded demo config and component sources into
// dir and makes each component a git repository with one commit. Existing
// repositories are left alone so a rerun keeps their history.
func writeDemoFarm(dir string) error {
	cfg, err := configs.Demo.ReadFile("demo.yaml")
	if err != nil {
		return fmt.Errorf("demo: read embedded config: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "demo.yaml"), cfg, 0o644); err != nil {
		return fmt.Errorf("demo: write config: %w", err)
	}
	components, err := configs.Demo.ReadDir("demo")
	if err != nil {
		return fmt.Errorf("demo: read embedded sources: %w", err)
	}
	for _, c := range components {
		repoDir := filepath.Join(dir, "src", c.Name())
		if _, err := os.Stat(filepath.Join(repoDir, ".git")); err == nil {
			continue
		}
		if err := copyEmbedded(path.Join("demo", c.Name()), repoDir); err != nil {
			return err
		}
		if err := commitAll(repoDir, "Import "+c.Name()+" for the Kiln demo"); err != nil {
			return err
		}
	}
	return nil
}

func copyEmbedded(from, to string) error {
	return fs.WalkDir(configs.Demo, from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		data, err := configs.Demo.ReadFile(p)
		if err != nil {
			return fmt.Errorf("demo: read %s: %w", p, err)
		}
		// embed drops file modes: a file starting with #! is a script.
		mode := os.FileMode(0o644)
		if len(data) > 1 && data[0] == '#' && data[1] == '!' {
			mode = 0o755
		}
		if err := os.WriteFile(dst, data, mode); err != nil {
			return fmt.Errorf("demo: write %s: %w", dst, err)
		}
		return nil
	})
}

func commitAll(dir, msg string) error {
	repo, err := git.PlainInitWithOptions(dir, &git.PlainInitOptions{
		InitOptions: git.InitOptions{DefaultBranch: plumbing.NewBranchReferenceName(builders.DefaultBranch)},
	})
	if err != nil {
		return fmt.Errorf("demo: git init %s: %w", dir, err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		return fmt.Errorf("demo: worktree %s: %w", dir, err)
	}
	if err := wt.AddGlob("."); err != nil {
		return fmt.Errorf("demo: git add in %s: %w", dir, err)
	}
	sig := &object.Signature{Name: "Kiln demo", Email: "demo@kiln.invalid", When: time.Now()}
	if _, err := wt.Commit(msg, &git.CommitOptions{Author: sig}); err != nil {
		return fmt.Errorf("demo: git commit in %s: %w", dir, err)
	}
	return nil
}

// demoToken reads a token of an earlier run or makes one.
func demoToken(file string) (string, error) {
	if b, err := os.ReadFile(file); err == nil && len(b) > 0 {
		return string(trimNewline(b)), nil
	}
	raw := make([]byte, 24)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("demo: make token: %w", err)
	}
	token := hex.EncodeToString(raw)
	if err := os.WriteFile(file, []byte(token+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("demo: write token: %w", err)
	}
	return token, nil
}

func trimNewline(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

func workerConnected(ctx context.Context, c *client.Client, name string) bool {
	workers, err := c.Workers(ctx)
	if err != nil {
		return false
	}
	for _, w := range workers {
		if w.Name == name && w.Connected {
			return true
		}
	}
	return false
}

// waitFor polls cond until it holds, the timeout passes, ctx ends or a
// supervised process dies (which would make waiting pointless).
func waitFor(ctx context.Context, timeout time.Duration, sup *supervisor, cond func() bool) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			return fmt.Errorf("not ready after %s", timeout)
		case name := <-sup.exited:
			return fmt.Errorf("%s exited", name)
		case <-tick.C:
		}
	}
	return nil
}

// supervisor owns the demo's child processes: it starts them with their
// output in a log file each, reports the first that exits, and on stop
// sends SIGTERM and waits for all of them.
type supervisor struct {
	logDir string
	procs  []supervised
	exited chan string
	once   sync.Once
}

type supervised struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has been reaped
}

func (s *supervisor) logPath(name string) string { return filepath.Join(s.logDir, name+".log") }

func (s *supervisor) start(ctx context.Context, name string, env []string, bin string, args ...string) error {
	s.once.Do(func() { s.exited = make(chan string, 8) })
	logf, err := os.OpenFile(s.logPath(name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("demo: open %s log: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("demo: start %s: %w", name, err)
	}
	p := supervised{cmd: cmd, done: make(chan struct{})}
	s.procs = append(s.procs, p)
	go func() {
		defer close(p.done)
		defer logf.Close()
		_ = cmd.Wait()
		if ctx.Err() == nil {
			s.exited <- name
		}
	}()
	return nil
}

// stop ends the processes in reverse start order: the worker drains before
// the master goes, the signer last.
func (s *supervisor) stop() {
	for i := len(s.procs) - 1; i >= 0; i-- {
		p := s.procs[i]
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(15 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
}
