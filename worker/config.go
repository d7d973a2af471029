// Package worker is the build host daemon: it dials out to the master's NATS,
// advertises its tags and slots, runs the builds it is given step by step,
// streams their logs, stores their artifacts and reports until acknowledged.
package worker

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"regexp"
	"time"
)

// Config is a worker's settings.
type Config struct {
	Name    string // also its NATS user and the token in its subjects
	NATSURL string
	Token   string // NATS password of the worker's user
	Tags    []string
	Slots   int // builds at once; default 1
	WorkDir string
	// CacheDir survives builds (git mirrors); default WorkDir/cache.
	CacheDir string
	// HeartbeatInterval until the master's HelloReply says otherwise; default 10s.
	HeartbeatInterval time.Duration
	Logger            *slog.Logger

	// Version is reported in Hello (the binary's version).
	Version string
	// KeepWorkspaces leaves each build's workspace behind for debugging.
	KeepWorkspaces bool
	// Probe detects the host's tags; the zero value looks at this host.
	Probe Probe
	// SignRPM signs rpm headers built by nfpm steps; nil builds them unsigned.
	SignRPM func(header []byte) ([]byte, error)
}

// ErrConfig marks an invalid Config.
var ErrConfig = errors.New("invalid worker config")

// nameRE keeps a worker name usable as one NATS subject token and as a user name.
var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

func (c *Config) setDefaults() error {
	switch {
	case !nameRE.MatchString(c.Name):
		return fmt.Errorf("%w: name %q: use lower-case letters, digits, '-' and '_'", ErrConfig, c.Name)
	case c.NATSURL == "":
		return fmt.Errorf("%w: no NATS URL of the master", ErrConfig)
	case c.WorkDir == "":
		return fmt.Errorf("%w: no work directory", ErrConfig)
	case c.Slots < 0:
		return fmt.Errorf("%w: slots %d", ErrConfig, c.Slots)
	}
	if c.Slots == 0 {
		c.Slots = 1
	}
	wd, err := filepath.Abs(c.WorkDir)
	if err != nil {
		return fmt.Errorf("%w: work directory: %w", ErrConfig, err)
	}
	c.WorkDir = wd
	if c.CacheDir == "" {
		c.CacheDir = filepath.Join(c.WorkDir, "cache")
	}
	if c.CacheDir, err = filepath.Abs(c.CacheDir); err != nil {
		return fmt.Errorf("%w: cache directory: %w", ErrConfig, err)
	}
	if c.HeartbeatInterval <= 0 {
		c.HeartbeatInterval = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// buildsDir holds one workspace per running attempt.
func (c *Config) buildsDir() string { return filepath.Join(c.WorkDir, "builds") }
