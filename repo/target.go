package repo

import (
	"errors"
	"fmt"
	"path"

	"github.com/kiln-build/kiln/repo/pkgmeta"
)

var (
	// ErrInvalid means a channel, target or package list cannot be published.
	ErrInvalid = errors.New("invalid publish request")
	// ErrNoVersion means a channel has no (other) version to serve or roll back to.
	ErrNoVersion = errors.New("no such version")
)

// Target is one cell of the platform matrix as the repository sees it.
type Target struct {
	Distro  string         `json:"distro"`  // debian, ubuntu, centos, fedora...
	Version string         `json:"version"` // bookworm, 9...
	Arch    string         `json:"arch"`    // amd64, x86_64...
	Format  pkgmeta.Format `json:"format"`
	// Codename names dists/<codename> for apt; it defaults to Version.
	Codename string `json:"codename,omitempty"`
	// Key is the signing key name handed to the Signer.
	Key string `json:"key"`
}

func (t Target) String() string { return t.Distro + "/" + t.Version + "/" + t.Arch }

func (t Target) codename() string {
	if t.Codename != "" {
		return t.Codename
	}
	return t.Version
}

// Dir is the repository root of the target inside a channel, as clients
// address it: apt/<distro> (one archive per distro; the codename selects
// dists/<codename>) or yum/<distro>/<version>/<arch>.
func (t Target) Dir() string {
	if t.Format == pkgmeta.Deb {
		return path.Join("apt", t.Distro)
	}
	return path.Join("yum", t.Distro, t.Version, t.Arch)
}

func (t Target) validate() error {
	for _, s := range []string{t.Distro, t.Version, t.Arch, t.codename()} {
		if err := pkgmeta.CheckFileName(s); err != nil {
			return fmt.Errorf("%w: target %s: %w", ErrInvalid, t, err)
		}
	}
	if t.Format != pkgmeta.Deb && t.Format != pkgmeta.RPM {
		return fmt.Errorf("%w: target %s: format %q", ErrInvalid, t, t.Format)
	}
	if t.Key == "" {
		return fmt.Errorf("%w: target %s has no signing key", ErrInvalid, t)
	}
	return nil
}

// TargetContents is what one target of a channel should contain.
type TargetContents struct {
	Target   Target             `json:"target"`
	Packages []*pkgmeta.Package `json:"packages"`
}

// ChannelContents is the whole wanted state of a channel. The caller (the
// master's state) owns it; a publish never scans the pool to find packages.
type ChannelContents struct {
	Targets []TargetContents `json:"targets"`
}
