// Package pkgmeta reads the metadata of .deb and .rpm files once, at upload,
// into a JSON-serialisable Package that the master stores and the publisher
// reuses, so that publishing never has to open a package file again.
package pkgmeta

import (
	"errors"
	"fmt"
	"strings"
)

// Format is a package file format.
type Format string

const (
	Deb Format = "deb"
	RPM Format = "rpm"
)

var (
	// ErrCorrupt means a package file could not be parsed.
	ErrCorrupt = errors.New("corrupt package")
	// ErrMismatch means a package does not match what its builder was expected to make.
	ErrMismatch = errors.New("package does not match its target")
	// ErrUnsafeName means a file or package name could escape the directory it is meant for.
	ErrUnsafeName = errors.New("unsafe name")
	// ErrFormat means the file is neither a .deb nor an .rpm.
	ErrFormat = errors.New("unknown package format")
)

// Package is everything the apt and yum index writers need about one package file.
type Package struct {
	Format  Format `json:"format"`
	Name    string `json:"name"`
	Epoch   int    `json:"epoch,omitempty"`
	Version string `json:"version"` // deb: the whole Version field; rpm: VERSION
	Release string `json:"release,omitempty"`
	Arch    string `json:"arch"`
	// Source is the source package name (deb) or the source rpm file name (rpm).
	Source string `json:"source"`
	// FileName is the canonical base name the publisher gives the file in the pool.
	FileName string `json:"file_name"`
	Size     int64  `json:"size"`
	SHA256   string `json:"sha256"`
	MD5      string `json:"md5"`
	SHA1     string `json:"sha1"`
	// Path is where the caller keeps the file; the publisher copies it into
	// its store the first time it sees the checksum.
	Path    string   `json:"path,omitempty"`
	Control []Field  `json:"control,omitempty"`
	RPM     *RPMInfo `json:"rpm,omitempty"`
	// Files are the files a source package (.dsc) lists, published next
	// to it; empty for binary packages.
	Files []SourceFile `json:"files,omitempty"`
}

// Field is one field of a Debian control paragraph. Value keeps continuation
// lines verbatim (newline plus their leading space), so writing "Name: Value"
// reproduces the field.
type Field struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// FullVersion is the version as the format's tools print it: deb's Version
// field, or rpm's [epoch:]version-release.
func (p *Package) FullVersion() string {
	if p.Format == Deb {
		return p.Version
	}
	v := p.Version + "-" + p.Release
	if p.Epoch > 0 {
		v = fmt.Sprintf("%d:%s", p.Epoch, v)
	}
	return v
}

// String names the package the way error messages and logs should.
func (p *Package) String() string {
	return fmt.Sprintf("%s %s %s (%s)", p.Name, p.FullVersion(), p.Arch, p.FileName)
}

// Field returns the value of a control field (case-insensitive), or "".
func (p *Package) Field(name string) string {
	for _, f := range p.Control {
		if strings.EqualFold(f.Name, name) {
			return f.Value
		}
	}
	return ""
}

// IsDebug reports whether p holds only debugging symbols or sources:
// Debian's automatic -dbgsym packages (Auto-Built-Package: debug-symbols)
// and rpm's -debuginfo and -debugsource. Repositories keep them apart from
// the packages every client sees. A hand-made -dbg package is an ordinary
// package, as in Debian's archive.
func (p *Package) IsDebug() bool {
	if p.Format == Deb {
		return p.Field("Auto-Built-Package") == "debug-symbols" || strings.HasSuffix(p.Name, "-dbgsym")
	}
	return p.Format == RPM && (strings.HasSuffix(p.Name, "-debuginfo") || strings.HasSuffix(p.Name, "-debugsource"))
}

// IsArchIndependent reports whether the package installs on every architecture.
func (p *Package) IsArchIndependent() bool {
	return p.Arch == "all" || p.Arch == "noarch"
}
