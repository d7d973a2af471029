package master

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/kiln-build/kiln/master/api"
	"github.com/kiln-build/kiln/master/state"
	"github.com/kiln-build/kiln/master/web"
	"github.com/kiln-build/kiln/repo"
	"github.com/kiln-build/kiln/repo/pkgmeta"
)

var errNoRepos = fmt.Errorf("%w: %w", api.ErrUnavailable, ErrNoRepos)

// Repos lists each configured channel's targets with the packages state
// says they serve (API, ctl repo ls).
func (m *Master) Repos(_ context.Context, channel, target string) ([]api.Repo, error) {
	if m.repos == nil {
		return nil, errNoRepos
	}
	var out []api.Repo
	for _, ch := range m.matrix.Load().Config.Repos.Channels {
		if channel != "" && ch.Name != channel {
			continue
		}
		cur := m.node.FSM.RepoChannel(ch.Name)
		for _, t := range m.repoTargets(ch) {
			if target != "" && t.String() != target {
				continue
			}
			rt := cur[t.String()]
			slices.SortFunc(rt.Packages, func(a, b state.RepoPackage) int {
				return cmp.Or(strings.Compare(a.Package.Name, b.Package.Name), pkgmeta.Compare(a.Package, b.Package))
			})
			r := api.Repo{Channel: ch.Name, Target: t.String(), Format: string(t.Format), URL: m.reposBaseURL() + "/" + ch.Name + "/" + t.Dir(),
				Version: rt.Version, Published: rt.Published, Packages: make([]api.RepoPackage, 0, len(rt.Packages))}
			for _, p := range rt.Packages {
				r.Packages = append(r.Packages, api.RepoPackage{Name: p.Package.Name, Version: p.Package.FullVersion(), Arch: p.Package.Arch,
					FileName: p.Package.FileName, Size: p.Package.Size, SHA256: p.Package.SHA256, Build: p.Build, Published: p.Published})
			}
			out = append(out, r)
		}
	}
	if channel != "" && len(out) == 0 {
		if _, err := m.channel(channel); err != nil {
			return nil, fmt.Errorf("%w: %w", state.ErrNotFound, err)
		}
		return nil, fmt.Errorf("channel %s has no target %q: %w", channel, target, state.ErrNotFound)
	}
	return out, nil
}

// RepoClientConfig is what a machine needs to install from one target of a
// channel (API, ctl repo client-config).
func (m *Master) RepoClientConfig(ctx context.Context, channel, target string) (string, error) {
	if m.repos == nil {
		return "", errNoRepos
	}
	ch, err := m.channel(channel)
	if err != nil {
		return "", fmt.Errorf("%w: %w", state.ErrNotFound, err)
	}
	targets := m.repoTargets(ch)
	i := slices.IndexFunc(targets, func(t repo.Target) bool { return t.String() == target })
	if i < 0 {
		return "", fmt.Errorf("channel %s has no target %q: %w", channel, target, state.ErrNotFound)
	}
	pub, err := m.repos.publicKey(ctx, ch.Key)
	if err != nil {
		return "", fmt.Errorf("%w: %w", api.ErrUnavailable, err)
	}
	text, err := repo.ClientConfig(channel, targets[i], m.reposBaseURL(), pub)
	if err != nil || targets[i].Format != pkgmeta.RPM {
		return text, err
	}
	// A .repo only points at its key file; the key follows, for the caller
	// to put there.
	return fmt.Sprintf("%s\n# The key gpgkey= names: save what follows as %s\n%s", text, repo.KeyPath(channel), pub), nil
}

// RepoRollback serves a channel's previous version again and makes state
// list what that version holds, so the next publish builds on it rather
// than bring back what the rollback removed. Packages the older version
// lists that retention had already dropped from state are not restored to
// state; the next publish leaves them out.
func (m *Master) RepoRollback(ctx context.Context, channel string) (*api.RollbackResult, error) {
	if m.repos == nil {
		return nil, errNoRepos
	}
	if !m.node.IsLeader() {
		return nil, fmt.Errorf("rollback %s: %w", channel, state.ErrNotLeader)
	}
	if _, err := m.channel(channel); err != nil {
		return nil, fmt.Errorf("%w: %w", state.ErrNotFound, err)
	}
	m.repos.mu.Lock()
	defer m.repos.mu.Unlock()
	v, err := m.repos.pub.Rollback(ctx, channel)
	if errors.Is(err, repo.ErrNoVersion) {
		return nil, fmt.Errorf("%w: %w", state.ErrNotFound, err)
	}
	if err != nil {
		return nil, err
	}
	man, err := m.repos.pub.Manifest(channel, v.ID)
	if err != nil {
		return nil, fmt.Errorf("rollback %s: %w", channel, err)
	}
	pc := &state.PublishCmd{Channel: channel, Version: v.ID, Time: v.Created, Remove: map[string][]string{}}
	cur := m.node.FSM.RepoChannel(channel)
	for _, mt := range man.Targets {
		t := mt.Target.String()
		pc.Targets = append(pc.Targets, t)
		for _, p := range cur[t].Packages {
			if !slices.ContainsFunc(mt.Packages, func(e repo.ManifestEntry) bool { return e.SHA256 == p.Package.SHA256 }) {
				pc.Remove[t] = append(pc.Remove[t], p.Package.SHA256)
			}
		}
	}
	if _, err := m.node.Apply1(ctx, state.Command{Publish: pc}); err != nil {
		return nil, fmt.Errorf("record rollback of %s: %w", channel, err)
	}
	m.repos.log.Warn("channel rolled back", "channel", channel, "version", v.ID, "user", api.User(ctx))
	return &api.RollbackResult{Channel: channel, Version: v.ID}, nil
}

// repositories is what each channel publishes per target, for the pages.
func (m *Master) repositories(ctx context.Context) ([]web.Repository, error) {
	if m.repos == nil {
		return nil, nil
	}
	list, err := m.Repos(ctx, "", "")
	if err != nil {
		return nil, err
	}
	out := make([]web.Repository, 0, len(list))
	for _, r := range list {
		wr := web.Repository{Channel: r.Channel, Target: r.Target, Published: r.Published}
		for _, p := range r.Packages {
			wr.Packages = append(wr.Packages, web.Package{Name: p.Name, Version: p.Version, Arch: p.Arch})
		}
		out = append(out, wr)
	}
	return out, nil
}
