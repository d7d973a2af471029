package publish

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/kiln-build/kiln/master/state"
	"github.com/kiln-build/kiln/repo"
	"github.com/kiln-build/kiln/repo/pkgmeta"
)

// ClientConfig is what a machine needs to install from one target of a
// channel: apt's .sources or yum's .repo text, with the key.
func (r *Publisher) ClientConfig(ctx context.Context, channel, target string) (string, error) {
	if r.off() {
		return "", ErrNoRepos
	}
	ch, err := r.Channel(channel)
	if err != nil {
		return "", fmt.Errorf("%w: %w", state.ErrNotFound, err)
	}
	targets := r.Targets(ch)
	i := slices.IndexFunc(targets, func(t repo.Target) bool { return t.String() == target })
	if i < 0 {
		return "", fmt.Errorf("channel %s has no target %q: %w", channel, target, state.ErrNotFound)
	}
	pub, err := r.publicKey(ctx, ch.Key)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrNoRepos, err)
	}
	text, err := repo.ClientConfig(channel, targets[i], r.BaseURL(), pub)
	if err != nil || targets[i].Format != pkgmeta.RPM {
		return text, err
	}
	// A .repo only points at its key file; the key follows, for the caller
	// to put there.
	return fmt.Sprintf("%s\n# The key gpgkey= names: save what follows as %s\n%s", text, repo.KeyPath(channel), pub), nil
}

// Rollback serves a channel's previous version again and makes state list
// what that version holds, so the next publish builds on it rather than
// bring back what the rollback removed. Packages the older version lists
// that retention had already dropped from state are not restored to state;
// the next publish leaves them out. It returns the version now served.
func (r *Publisher) Rollback(ctx context.Context, channel, user string) (string, error) {
	if r.off() {
		return "", ErrNoRepos
	}
	if !r.o.Node.IsLeader() {
		return "", fmt.Errorf("rollback %s: %w", channel, state.ErrNotLeader)
	}
	if _, err := r.Channel(channel); err != nil {
		return "", fmt.Errorf("%w: %w", state.ErrNotFound, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	v, err := r.pub.Rollback(ctx, channel)
	if errors.Is(err, repo.ErrNoVersion) {
		return "", fmt.Errorf("%w: %w", state.ErrNotFound, err)
	}
	if err != nil {
		return "", err
	}
	man, err := r.pub.Manifest(channel, v.ID)
	if err != nil {
		return "", fmt.Errorf("rollback %s: %w", channel, err)
	}
	pc := &state.PublishCmd{Channel: channel, Version: v.ID, Time: v.Created, Remove: map[string][]string{}}
	cur := r.o.Node.FSM.RepoChannel(channel)
	for _, mt := range man.Targets {
		t := mt.Target.String()
		pc.Targets = append(pc.Targets, t)
		for _, p := range cur[t].Packages {
			if !slices.ContainsFunc(mt.Packages, func(e repo.ManifestEntry) bool { return e.SHA256 == p.Package.SHA256 }) {
				pc.Remove[t] = append(pc.Remove[t], p.Package.SHA256)
			}
		}
	}
	if _, err := r.o.Node.Apply1(ctx, state.Command{Publish: pc}); err != nil {
		return "", fmt.Errorf("record rollback of %s: %w", channel, err)
	}
	r.log.Warn("channel rolled back", "channel", channel, "version", v.ID, "user", user)
	return v.ID, nil
}

// Enabled tells whether this master publishes (it has a signing agent).
func (r *Publisher) Enabled() bool { return !r.off() }
