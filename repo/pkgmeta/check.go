package pkgmeta

import (
	"errors"
	"fmt"
)

// Expect is what a builder's target says its packages must be. Empty fields
// are not checked.
type Expect struct {
	Format  Format
	Name    string
	Version string // as FullVersion prints it
	Arch    string // the target's architecture in the format's own spelling
}

// Check compares a package with what its builder was meant to produce.
// Architecture-independent packages (all, noarch) and Debian source
// packages fit every target.
func Check(p *Package, want Expect) error {
	var errs []error
	if want.Format != "" && p.Format != want.Format {
		errs = append(errs, fmt.Errorf("format is %s, target wants %s", p.Format, want.Format))
	}
	if want.Name != "" && p.Name != want.Name {
		errs = append(errs, fmt.Errorf("name is %q, target wants %q", p.Name, want.Name))
	}
	if want.Version != "" && p.FullVersion() != want.Version {
		errs = append(errs, fmt.Errorf("version is %q, target wants %q", p.FullVersion(), want.Version))
	}
	if want.Arch != "" && p.Arch != want.Arch && !p.IsArchIndependent() && !p.IsSource() {
		errs = append(errs, fmt.Errorf("architecture is %q, target wants %q", p.Arch, want.Arch))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %s: %w", ErrMismatch, p.FileName, errors.Join(errs...))
	}
	return nil
}
