package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/kiln-build/kiln/builders"
	"github.com/kiln-build/kiln/master"
)

// reloadOnHangup reloads m's config on every SIGHUP until ctx ends or the
// returned stop is called, which waits for a reload in progress.
func reloadOnHangup(ctx context.Context, m *master.Master, log *slog.Logger) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				log.Info("SIGHUP: reloading the config")
				// A refusal is logged by the master with its file:line.
				if err := m.Reload(ctx); err != nil && !errors.Is(err, master.ErrConfigRefused) {
					log.Error("config reload", "err", err)
				}
			}
		}
	})
	return func() {
		signal.Stop(hup)
		cancel()
		wg.Wait()
	}
}

// durationFlag reads a builders.Duration flag ("30s", "5m").
type durationFlag builders.Duration

func (d *durationFlag) String() string { return builders.Duration(*d).D().String() }
func (d *durationFlag) Set(s string) error {
	return (*builders.Duration)(d).UnmarshalText([]byte(s))
}
func (d *durationFlag) Type() string { return "duration" }
