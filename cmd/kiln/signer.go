package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/signing"
	"github.com/kiln-build/kiln/signing/natsig"
)

// defaultSignerSocket lives in the master's default data directory, so a
// signer beside the master needs no flag.
const defaultSignerSocket = "/var/lib/kiln/signer.sock"

type signerOpts struct {
	keys         []string
	socket       string
	allowUIDs    []uint
	natsURL      string
	natsCreds    string
	natsName     string
	passphraseFD int
	ttl          time.Duration
	auditLog     string
	maxBatch     int
}

func newSignerCmd() *cobra.Command {
	o := &signerOpts{}
	cmd := &cobra.Command{
		Use:   "signer --key [NAME=]FILE.asc [--key ...] [--socket PATH] [--nats URL --credentials FILE]",
		Short: "Run the signing agent: hold OpenPGP keys in memory and sign on request",
		Long: `The signer loads armored OpenPGP v4 secret keys, asks for each passphrase once
(terminal prompt with echo off, --passphrase-fd N, or the systemd credential
$CREDENTIALS_DIRECTORY/<key name>), and then signs on request over its Unix
socket and, with --nats, over NATS request/reply. Every signature is appended
to the audit log. See docs/signing.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runSigner(cmd, o) },
	}
	f := cmd.Flags()
	f.StringArrayVar(&o.keys, "key", nil, "secret key file, NAME=FILE or FILE (name = file name up to the first dot); repeatable")
	cmd.PersistentFlags().StringVar(&o.socket, "socket", envOr("KILN_SIGNER_SOCKET", defaultSignerSocket), "Unix socket path (env KILN_SIGNER_SOCKET)")
	f.UintSliceVar(&o.allowUIDs, "allow-uid", nil, "peer uids allowed on the socket (default: the signer's own uid and root)")
	f.StringVar(&o.natsURL, "nats", "", "also serve over NATS at this URL")
	f.StringVar(&o.natsCreds, "credentials", "", "NATS credentials file for the signer's NATS user")
	f.StringVar(&o.natsName, "name", "default", "agent name; NATS requests arrive on kiln.signer.<name>.sign.<user>")
	f.IntVar(&o.passphraseFD, "passphrase-fd", -1, "read passphrases from this file descriptor, one line per encrypted key")
	f.DurationVar(&o.ttl, "ttl", 0, "lock keys (zero the secret material) this long after unlocking; 0 = never")
	f.StringVar(&o.auditLog, "audit-log", "", "audit log (JSON lines); default signer-audit.jsonl beside the socket")
	f.IntVar(&o.maxBatch, "max-batch-bytes", signing.DefaultMaxBatchBytes, "largest total data of one signing batch")
	cmd.MarkFlagRequired("key")
	cmd.AddCommand(newSignerUnlockCmd(), newSignerStatusCmd(), newSignerGenkeyCmd(),
		newSignerPubkeyCmd(), newSignerSignCmd(), newSignerAuditCmd())
	return cmd
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func runSigner(cmd *cobra.Command, o *signerOpts) error {
	log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
	var keys []*signing.Key
	for _, spec := range o.keys {
		name, path := signing.ParseKeySpec(spec)
		k, err := signing.LoadKey(name, path)
		if err != nil {
			return err
		}
		keys = append(keys, k)
	}
	src, closeSrc, err := passphraseSource(o.passphraseFD)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if !k.Encrypted() {
			log.Warn("key file is not passphrase-protected; use only for demos", "component", "signer", "key", k.Name, "path", k.Path)
		}
		if err := signing.UnlockWith(k, src.For(signing.KeyStatus{Name: k.Name, Fingerprint: k.Fingerprint}), o.ttl, cmd.ErrOrStderr()); err != nil {
			closeSrc()
			return &exitError{code: 2, err: err}
		}
	}
	closeSrc()

	auditPath := o.auditLog
	if auditPath == "" {
		auditPath = filepath.Join(filepath.Dir(o.socket), "signer-audit.jsonl")
	}
	audit, err := signing.OpenAuditLog(auditPath)
	if err != nil {
		return err
	}
	defer audit.Close()
	agent, err := signing.NewAgent(keys, signing.Options{MaxBatchBytes: o.maxBatch, TTL: o.ttl, Audit: audit, Logger: log})
	if err != nil {
		return err
	}
	ln, err := signing.ListenSocket(o.socket)
	if err != nil {
		return err
	}
	allow := make([]uint32, len(o.allowUIDs))
	for i, u := range o.allowUIDs {
		allow[i] = uint32(u)
	}

	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithCancelCause(ctx)
	var wg sync.WaitGroup
	run := func(name string, f func() error) {
		wg.Go(func() {
			if err := f(); err != nil {
				cancel(fmt.Errorf("%s: %w", name, err))
			}
		})
	}
	run("agent", func() error { return agent.Run(ctx) })
	srv := &signing.SocketServer{Agent: agent, AllowUIDs: allow, Logger: log}
	run("socket", func() error { return srv.Serve(ctx, ln) })
	if o.natsURL != "" {
		nc, err := connectSignerNATS(o)
		if err != nil {
			cancel(err)
		} else {
			defer nc.Close()
			run("nats", func() error { return natsig.Serve(ctx, nc, natsig.DefaultPrefix(o.natsName), agent, log) })
		}
	}
	log.Info("signer ready", "component", "signer", "socket", o.socket, "keys", len(keys), "audit", auditPath, "nats", o.natsURL != "")
	<-ctx.Done()
	cancel(nil)
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

func connectSignerNATS(o *signerOpts) (*nats.Conn, error) {
	opts := []nats.Option{nats.Name("kiln-signer-" + o.natsName), nats.MaxReconnects(-1)}
	if o.natsCreds != "" {
		opts = append(opts, nats.UserCredentials(o.natsCreds))
	}
	nc, err := nats.Connect(o.natsURL, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %w", o.natsURL, err)
	}
	return nc, nil
}

// passphrases picks, per key, where its passphrase comes from: an explicit
// --passphrase-fd wins, then a systemd credential named after the key, then
// the terminal.
type passphrases struct {
	fd      signing.PassphraseSource
	credDir string
	tty     *os.File
	ttyErr  error
}

func passphraseSource(fd int) (*passphrases, func(), error) {
	p := &passphrases{credDir: os.Getenv("CREDENTIALS_DIRECTORY")}
	closers := []func(){}
	if fd >= 0 {
		f := os.NewFile(uintptr(fd), "passphrase-fd")
		if f == nil {
			return nil, nil, fmt.Errorf("--passphrase-fd %d: not an open file descriptor", fd)
		}
		p.fd = signing.NewFDPassphrases(f)
		closers = append(closers, func() { f.Close() })
	}
	closeAll := func() {
		for _, c := range closers {
			c()
		}
		if p.tty != nil {
			p.tty.Close()
		}
	}
	return p, closeAll, nil
}

func (p *passphrases) For(k signing.KeyStatus) signing.PassphraseSource {
	if p.fd != nil {
		return p.fd
	}
	if p.credDir != "" {
		if _, err := os.Stat(filepath.Join(p.credDir, k.Name)); err == nil {
			return signing.CredentialPassphrases{Dir: p.credDir}
		}
	}
	if p.tty == nil && p.ttyErr == nil {
		p.tty, p.ttyErr = signing.OpenTTY()
	}
	if p.ttyErr != nil {
		return failingSource{err: p.ttyErr}
	}
	return signing.TTYPassphrases{TTY: p.tty}
}

type failingSource struct{ err error }

func (f failingSource) Passphrase(signing.KeyStatus) ([]byte, error) { return nil, f.err }
func (f failingSource) Interactive() bool                            { return false }
