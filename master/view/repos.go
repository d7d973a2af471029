package view

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/kiln-build/kiln/master/api"
	"github.com/kiln-build/kiln/master/publish"
	"github.com/kiln-build/kiln/master/state"
	"github.com/kiln-build/kiln/master/web"
	"github.com/kiln-build/kiln/repo/pkgmeta"
)

// Repositories is what each channel publishes per target.
func (s *Pages) Repositories(ctx context.Context) ([]web.Repository, error) {
	if !s.v.o.Publisher.Enabled() {
		return nil, nil
	}
	list, err := s.v.Repos(ctx, "", "")
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

// Repos lists each configured channel's targets with the packages state
// says they serve.
func (v *View) Repos(_ context.Context, channel, target string) ([]api.Repo, error) {
	pub := v.o.Publisher
	if !pub.Enabled() {
		return nil, apiError(publish.ErrNoRepos)
	}
	var out []api.Repo
	for _, ch := range v.o.Matrix().Config.Repos.Channels {
		if channel != "" && ch.Name != channel {
			continue
		}
		cur := v.o.Node.FSM.RepoChannel(ch.Name)
		for _, t := range pub.Targets(ch) {
			if target != "" && t.String() != target {
				continue
			}
			rt := cur[t.String()]
			slices.SortFunc(rt.Packages, func(a, b state.RepoPackage) int {
				return cmp.Or(strings.Compare(a.Package.Name, b.Package.Name), pkgmeta.Compare(a.Package, b.Package))
			})
			r := api.Repo{Channel: ch.Name, Target: t.String(), Format: string(t.Format), URL: pub.BaseURL() + "/" + ch.Name + "/" + t.Dir(),
				Version: rt.Version, Published: rt.Published, Packages: make([]api.RepoPackage, 0, len(rt.Packages))}
			for _, p := range rt.Packages {
				r.Packages = append(r.Packages, api.RepoPackage{Name: p.Package.Name, Version: p.Package.FullVersion(), Arch: p.Package.Arch,
					FileName: p.Package.FileName, Size: p.Package.Size, SHA256: p.Package.SHA256, Build: p.Build, Published: p.Published})
			}
			out = append(out, r)
		}
	}
	if channel != "" && len(out) == 0 {
		if _, err := pub.Channel(channel); err != nil {
			return nil, fmt.Errorf("%w: %w", api.ErrNotFound, err)
		}
		return nil, fmt.Errorf("channel %s has no target %q: %w", channel, target, api.ErrNotFound)
	}
	return out, nil
}

// RepoClientConfig is what a machine needs to install from one target of a
// channel.
func (v *View) RepoClientConfig(ctx context.Context, channel, target string) (string, error) {
	text, err := v.o.Publisher.ClientConfig(ctx, channel, target)
	return text, apiError(err)
}

// RepoRollback serves a channel's previous version again.
func (v *View) RepoRollback(ctx context.Context, channel string) (*api.RollbackResult, error) {
	ver, err := v.o.Publisher.Rollback(ctx, channel, api.User(ctx))
	if err != nil {
		return nil, apiError(err)
	}
	return &api.RollbackResult{Channel: channel, Version: ver}, nil
}
