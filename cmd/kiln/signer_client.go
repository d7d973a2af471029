package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/kiln-build/kiln/signing"
)

// withSigner runs use with a connection to the socket named by
// `kiln signer --socket`, closed when use returns.
func withSigner(cmd *cobra.Command, use func(*signing.RemoteClient) error) error {
	path, err := cmd.Flags().GetString("socket")
	if err != nil {
		return err
	}
	c, err := signing.DialSocket(path)
	if err != nil {
		return err
	}
	defer c.Close()
	return use(c)
}

func newSignerUnlockCmd() *cobra.Command {
	var fd int
	cmd := &cobra.Command{
		Use:   "unlock [KEY...]",
		Short: "Hand the passphrase of locked keys to the running signer (over its Unix socket)",
		RunE: func(cmd *cobra.Command, args []string) error {
			return withSigner(cmd, func(c *signing.RemoteClient) error {
				status, err := c.Status(cmd.Context())
				if err != nil {
					return err
				}
				src, closeSrc, err := passphraseSource(fd)
				if err != nil {
					return err
				}
				defer closeSrc()
				for _, k := range status {
					if (len(args) > 0 && !slices.Contains(args, k.Name) && !slices.Contains(args, k.Fingerprint)) || (len(args) == 0 && !k.Locked) {
						continue
					}
					err := signing.AskPassphrase(k, src.For(k), cmd.ErrOrStderr(), func(pass []byte) error {
						_, err := c.Unlock(cmd.Context(), k.Name, pass)
						return err
					})
					if err != nil {
						return &exitError{code: 2, err: err}
					}
					fmt.Fprintf(cmd.OutOrStdout(), "unlocked %s (%s)\n", k.Name, k.Fingerprint)
				}
				return nil
			})
		},
	}
	cmd.Flags().IntVar(&fd, "passphrase-fd", -1, "read passphrases from this file descriptor instead of the terminal")
	return cmd
}

func newSignerStatusCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "List the running signer's keys and whether each is locked",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withSigner(cmd, func(c *signing.RemoteClient) error {
				status, err := c.Status(cmd.Context())
				if err != nil {
					return err
				}
				for _, k := range status {
					state := "unlocked"
					if k.Locked {
						state = "locked"
					}
					fmt.Fprintf(cmd.OutOrStdout(), "%s\t%s\t%s\n", k.Name, k.Fingerprint, state)
				}
				return nil
			})
		},
	}
}

func newSignerGenkeyCmd() *cobra.Command {
	var name, typ, out, email string
	var fd int
	var noPass bool
	cmd := &cobra.Command{
		Use:   "genkey --name NAME --type rsa4096|ed25519 --out DIR",
		Short: "Generate a signing key: NAME.sec.asc (encrypted) and NAME.pub.asc, for demos and tests",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pass, err := newPassphrase(fd, noPass)
			if err != nil {
				return err
			}
			defer clear(pass)
			if email == "" {
				email = name + "@kiln.invalid"
			}
			g, err := signing.GenerateKey(name, email, signing.KeyType(typ), pass)
			if err != nil {
				return err
			}
			sec, pub, err := g.WriteKeyFiles(out, name)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s\nsecret key: %s\npublic key: %s\n", g.Fingerprint, sec, pub)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "key name (file names and the user ID)")
	f.StringVar(&typ, "type", string(signing.KeyEd25519), "rsa4096 or ed25519")
	f.StringVar(&out, "out", ".", "directory to write the key files to")
	f.StringVar(&email, "email", "", "user ID e-mail (default NAME@kiln.invalid)")
	f.IntVar(&fd, "passphrase-fd", -1, "read the passphrase from this file descriptor instead of prompting")
	f.BoolVar(&noPass, "no-passphrase", false, "write the secret key unencrypted (demos only)")
	cmd.MarkFlagRequired("name")
	return cmd
}

// newPassphrase reads a new key's passphrase from fd, or asks twice on the
// terminal. An empty one is refused unless noPass says it is meant.
func newPassphrase(fd int, noPass bool) ([]byte, error) {
	if noPass {
		return nil, nil
	}
	if fd >= 0 {
		f := os.NewFile(uintptr(fd), "passphrase-fd")
		if f == nil {
			return nil, fmt.Errorf("--passphrase-fd %d: not an open file descriptor", fd)
		}
		defer f.Close()
		p, err := signing.NewFDPassphrases(f).Passphrase(signing.KeyStatus{})
		if err != nil || len(p) == 0 {
			return nil, fmt.Errorf("no passphrase on fd %d (use --no-passphrase for an unencrypted demo key): %v", fd, err)
		}
		return p, nil
	}
	tty, err := signing.OpenTTY()
	if err != nil {
		return nil, err
	}
	defer tty.Close()
	ask := func(prompt string) ([]byte, error) {
		fmt.Fprint(tty, prompt)
		b, err := term.ReadPassword(int(tty.Fd()))
		fmt.Fprintln(tty)
		return b, err
	}
	p1, err := ask("New key passphrase: ")
	if err != nil {
		return nil, fmt.Errorf("read passphrase: %w", err)
	}
	p2, err := ask("Repeat passphrase: ")
	defer clear(p2)
	if err != nil {
		clear(p1)
		return nil, fmt.Errorf("read passphrase: %w", err)
	}
	if !bytes.Equal(p1, p2) || len(p1) == 0 {
		clear(p1)
		return nil, fmt.Errorf("passphrases differ or are empty (use --no-passphrase for an unencrypted demo key)")
	}
	return p1, nil
}

func newSignerPubkeyCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "pubkey NAME",
		Short: "Print the armored public key of a key the running signer holds",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withSigner(cmd, func(c *signing.RemoteClient) error {
				pub, err := c.PublicKey(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				_, err = cmd.OutOrStdout().Write(pub)
				return err
			})
		},
	}
}

func newSignerSignCmd() *cobra.Command {
	var key string
	var clearsign bool
	cmd := &cobra.Command{
		Use:   "sign --key NAME [--clearsign] FILE...",
		Short: "Have the running signer sign files: FILE.asc (detached) or, with --clearsign, the clearsigned FILE.asc",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, files []string) error {
			return signFiles(cmd.Context(), cmd, key, clearsign, files)
		},
	}
	cmd.Flags().StringVar(&key, "key", "", "key name or fingerprint")
	cmd.Flags().BoolVar(&clearsign, "clearsign", false, "write a cleartext signature instead of a detached one")
	cmd.MarkFlagRequired("key")
	return cmd
}

// signFiles sends all files in one batch, so either all get signatures or
// none does.
func signFiles(ctx context.Context, cmd *cobra.Command, key string, clearsign bool, files []string) error {
	kind := signing.KindDetached
	if clearsign {
		kind = signing.KindClearsign
	}
	reqs := make([]signing.Request, len(files))
	for i, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("sign: %w", err)
		}
		reqs[i] = signing.Request{Key: key, Kind: kind, Name: filepath.Base(f), Data: data}
	}
	return withSigner(cmd, func(c *signing.RemoteClient) error {
		resps, err := c.Sign(ctx, reqs)
		if err != nil {
			return err
		}
		for i, f := range files {
			if err := os.WriteFile(f+".asc", resps[i].Signature, 0o644); err != nil {
				return fmt.Errorf("sign: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s.asc\n", f)
		}
		return nil
	})
}

func newSignerAuditCmd() *cobra.Command {
	var path string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "audit [--log FILE] [--json]",
		Short: "Print the signer's audit log",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if path == "" {
				sock, _ := cmd.Flags().GetString("socket")
				path = filepath.Join(filepath.Dir(sock), "signer-audit.jsonl")
			}
			f, err := os.Open(path)
			if err != nil {
				return fmt.Errorf("audit: %w", err)
			}
			defer f.Close()
			entries, err := signing.ReadAudit(f)
			if err != nil {
				return fmt.Errorf("audit %s: %w", path, err)
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				for _, e := range entries {
					if err := enc.Encode(e); err != nil {
						return err
					}
				}
				return nil
			}
			return signing.WriteAuditTable(cmd.OutOrStdout(), entries)
		},
	}
	cmd.Flags().StringVar(&path, "log", "", "audit log file (default signer-audit.jsonl beside the socket)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON lines instead of a table")
	return cmd
}
