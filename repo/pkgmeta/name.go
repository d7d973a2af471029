package pkgmeta

import (
	"fmt"
	"strings"
)

// CheckFileName refuses names that are not a single plain path element:
// empty, ".", "..", hidden, containing a slash, backslash, NUL or any control
// character. Every name that ends up in a filesystem path goes through it.
func CheckFileName(name string) error {
	switch {
	case name == "", name == ".", name == "..":
		return fmt.Errorf("%w: %q", ErrUnsafeName, name)
	case strings.HasPrefix(name, "."):
		return fmt.Errorf("%w: %q starts with a dot", ErrUnsafeName, name)
	case len(name) > 255:
		return fmt.Errorf("%w: %q is longer than 255 bytes", ErrUnsafeName, name)
	case strings.Contains(name, ".."):
		return fmt.Errorf("%w: %q contains \"..\"", ErrUnsafeName, name)
	}
	for _, r := range name {
		if r == '/' || r == '\\' || r < 0x20 || r == 0x7f {
			return fmt.Errorf("%w: %q contains %q", ErrUnsafeName, name, r)
		}
	}
	return nil
}

// checkToken refuses metadata values that end up in file names (package
// name, version, arch) when they hold characters neither format allows.
func checkToken(what, v, allowed string) error {
	if v == "" {
		return fmt.Errorf("%w: empty %s", ErrCorrupt, what)
	}
	for _, r := range v {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(allowed, r)
		if !ok {
			return fmt.Errorf("%w: %s %q contains %q", ErrUnsafeName, what, v, r)
		}
	}
	return nil
}
