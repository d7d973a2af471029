package pkgmeta

import (
	"fmt"
	"path/filepath"
	"strings"
)

// ReadFile reads a package by its suffix. name is the file name the uploader
// gave (checked for path tricks); path is where the bytes are.
func ReadFile(path, name string) (*Package, error) {
	if err := CheckFileName(name); err != nil {
		return nil, fmt.Errorf("read package: %w", err)
	}
	switch strings.ToLower(filepath.Ext(name)) {
	case ".deb":
		return ReadDeb(path)
	case ".rpm":
		return ReadRPM(path)
	case ".dsc":
		return ReadDSC(path)
	}
	return nil, fmt.Errorf("read package %s: %w", name, ErrFormat)
}
