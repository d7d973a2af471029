// Package yum writes rpm-md repository metadata (primary, filelists, other
// and repomd.xml) from package metadata read at upload.
package yum

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/kiln-build/kiln/repo/pkgmeta"
)

const (
	nsCommon    = "http://linux.duke.edu/metadata/common"
	nsRPM       = "http://linux.duke.edu/metadata/rpm"
	nsFilelists = "http://linux.duke.edu/metadata/filelists"
	nsOther     = "http://linux.duke.edu/metadata/other"
	nsRepo      = "http://linux.duke.edu/metadata/repo"
	xmlHeader   = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
)

// Location is where a package lives relative to the repository root:
// Packages/<first letter>/<file>, as Fedora lays it out.
func Location(p *pkgmeta.Package) string {
	return path.Join("Packages", strings.ToLower(p.Name[:1]), p.FileName)
}

// Entry is a package with its location in the repository.
type Entry struct {
	Pkg      *pkgmeta.Package
	Location string
}

func esc(b *bytes.Buffer, s string) {
	// xml.EscapeText never fails on a bytes.Buffer.
	_ = xml.EscapeText(b, []byte(s))
}

func attr(b *bytes.Buffer, name, value string) {
	b.WriteByte(' ')
	b.WriteString(name)
	b.WriteString(`="`)
	esc(b, value)
	b.WriteByte('"')
}

// PrimaryHeader, PrimaryPackage and PrimaryFooter are split so a caller can
// cache per-package fragments.
func PrimaryHeader(b *bytes.Buffer, n int) {
	fmt.Fprintf(b, "%s<metadata xmlns=\"%s\" xmlns:rpm=\"%s\" packages=\"%d\">\n", xmlHeader, nsCommon, nsRPM, n)
}

func PrimaryFooter(b *bytes.Buffer) { b.WriteString("</metadata>\n") }

// PrimaryPackage writes one <package> of primary.xml.
func PrimaryPackage(b *bytes.Buffer, e Entry) {
	p, r := e.Pkg, e.Pkg.RPM
	b.WriteString("<package type=\"rpm\">\n  <name>")
	esc(b, p.Name)
	b.WriteString("</name>\n  <arch>")
	esc(b, p.Arch)
	b.WriteString("</arch>\n  <version")
	writeEVR(b, p)
	b.WriteString("/>\n  <checksum type=\"sha256\" pkgid=\"YES\">")
	b.WriteString(p.SHA256)
	b.WriteString("</checksum>\n")
	elem(b, "summary", r.Summary)
	elem(b, "description", r.Description)
	elem(b, "packager", r.Packager)
	elem(b, "url", r.URL)
	fmt.Fprintf(b, "  <time file=\"%d\" build=\"%d\"/>\n", r.FileTime, r.BuildTime)
	fmt.Fprintf(b, "  <size package=\"%d\" installed=\"%d\" archive=\"%d\"/>\n", p.Size, r.InstalledSize, r.ArchiveSize)
	b.WriteString("  <location")
	attr(b, "href", e.Location)
	b.WriteString("/>\n  <format>\n")
	elem(b, "rpm:license", r.License)
	elem(b, "rpm:vendor", r.Vendor)
	elem(b, "rpm:group", r.Group)
	elem(b, "rpm:buildhost", r.BuildHost)
	elem(b, "rpm:sourcerpm", r.SourceRPM)
	fmt.Fprintf(b, "    <rpm:header-range start=\"%d\" end=\"%d\"/>\n", r.HeaderStart, r.HeaderEnd)
	depList(b, "provides", r.Provides)
	depList(b, "requires", Requires(p))
	depList(b, "conflicts", r.Conflicts)
	depList(b, "obsoletes", r.Obsoletes)
	depList(b, "suggests", r.Suggests)
	depList(b, "enhances", r.Enhances)
	depList(b, "recommends", r.Recommends)
	depList(b, "supplements", r.Supplements)
	for _, f := range r.Files {
		if IsPrimaryFile(f.Path) {
			fileElem(b, "    ", f)
		}
	}
	b.WriteString("  </format>\n</package>\n")
}

func writeEVR(b *bytes.Buffer, p *pkgmeta.Package) {
	attr(b, "epoch", strconv.Itoa(p.Epoch))
	attr(b, "ver", p.Version)
	attr(b, "rel", p.Release)
}

func elem(b *bytes.Buffer, name, value string) {
	indent := "  "
	if strings.HasPrefix(name, "rpm:") {
		indent = "    "
	}
	b.WriteString(indent)
	if value == "" {
		fmt.Fprintf(b, "<%s/>\n", name)
		return
	}
	fmt.Fprintf(b, "<%s>", name)
	esc(b, value)
	fmt.Fprintf(b, "</%s>\n", name)
}

func depList(b *bytes.Buffer, kind string, deps []pkgmeta.Dep) {
	if len(deps) == 0 {
		return
	}
	fmt.Fprintf(b, "    <rpm:%s>\n", kind)
	for _, d := range deps {
		b.WriteString("      <rpm:entry")
		attr(b, "name", d.Name)
		if d.Flags != "" {
			attr(b, "flags", d.Flags)
			if d.Epoch != "" {
				attr(b, "epoch", d.Epoch)
			}
			if d.Ver != "" {
				attr(b, "ver", d.Ver)
			}
			if d.Rel != "" {
				attr(b, "rel", d.Rel)
			}
		}
		if d.Pre {
			attr(b, "pre", "1")
		}
		b.WriteString("/>\n")
	}
	fmt.Fprintf(b, "    </rpm:%s>\n", kind)
}

func fileElem(b *bytes.Buffer, indent string, f pkgmeta.File) {
	b.WriteString(indent)
	b.WriteString("<file")
	if f.Type != "" {
		attr(b, "type", f.Type)
	}
	b.WriteByte('>')
	esc(b, f.Path)
	b.WriteString("</file>\n")
}

// IsPrimaryFile reports whether a path belongs in primary.xml as well as in
// filelists.xml: the paths dependency solvers commonly need (the same rule
// createrepo_c applies).
func IsPrimaryFile(p string) bool {
	return strings.HasPrefix(p, "/etc/") || strings.Contains(p, "bin/") || p == "/usr/lib/sendmail"
}

// Requires filters a package's requirements as createrepo_c does: rpmlib()
// features, what the package provides itself, and duplicates are left out.
func Requires(p *pkgmeta.Package) []pkgmeta.Dep {
	r := p.RPM
	provided := make(map[string]bool, len(r.Provides)+len(r.Files))
	for _, d := range r.Provides {
		provided[d.Name] = true
	}
	for _, f := range r.Files {
		if IsPrimaryFile(f.Path) {
			provided[f.Path] = true
		}
	}
	seen := make(map[pkgmeta.Dep]bool, len(r.Requires))
	var out []pkgmeta.Dep
	for _, d := range r.Requires {
		if strings.HasPrefix(d.Name, "rpmlib(") || provided[d.Name] || seen[d] {
			continue
		}
		seen[d] = true
		out = append(out, d)
	}
	return out
}

// FilelistsHeader, FilelistsPackage, FilelistsFooter write filelists.xml.
func FilelistsHeader(b *bytes.Buffer, n int) {
	fmt.Fprintf(b, "%s<filelists xmlns=\"%s\" packages=\"%d\">\n", xmlHeader, nsFilelists, n)
}

func FilelistsFooter(b *bytes.Buffer) { b.WriteString("</filelists>\n") }

func FilelistsPackage(b *bytes.Buffer, e Entry) {
	p := e.Pkg
	packageIdent(b, p)
	for _, f := range p.RPM.Files {
		fileElem(b, "  ", f)
	}
	b.WriteString("</package>\n")
}

// packageIdent opens a filelists.xml or other.xml <package> with the
// identity both files key it by: the checksum, name, arch and version.
func packageIdent(b *bytes.Buffer, p *pkgmeta.Package) {
	b.WriteString("<package")
	attr(b, "pkgid", p.SHA256)
	attr(b, "name", p.Name)
	attr(b, "arch", p.Arch)
	b.WriteString(">\n  <version")
	writeEVR(b, p)
	b.WriteString("/>\n")
}

// OtherHeader, OtherPackage, OtherFooter write other.xml (changelogs).
func OtherHeader(b *bytes.Buffer, n int) {
	fmt.Fprintf(b, "%s<otherdata xmlns=\"%s\" packages=\"%d\">\n", xmlHeader, nsOther, n)
}

func OtherFooter(b *bytes.Buffer) { b.WriteString("</otherdata>\n") }

func OtherPackage(b *bytes.Buffer, e Entry) {
	p := e.Pkg
	packageIdent(b, p)
	// rpm keeps the newest entry first; other.xml lists oldest first.
	for i := len(p.RPM.Changelog) - 1; i >= 0; i-- {
		c := p.RPM.Changelog[i]
		b.WriteString("  <changelog")
		attr(b, "author", c.Author)
		attr(b, "date", strconv.FormatInt(c.Time, 10))
		b.WriteByte('>')
		esc(b, c.Text)
		b.WriteString("</changelog>\n")
	}
	b.WriteString("</package>\n")
}

// Record is one <data> entry of repomd.xml.
type Record struct {
	Type       string // primary, filelists, other
	Location   string // repodata/<sha256>-<type>.xml.gz
	SHA256     string // of the compressed file
	Size       int64
	OpenSHA256 string // of the uncompressed content
	OpenSize   int64
	Timestamp  int64
}

// Repomd renders repodata/repomd.xml.
func Repomd(revision int64, records []Record) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s<repomd xmlns=\"%s\" xmlns:rpm=\"%s\">\n  <revision>%d</revision>\n", xmlHeader, nsRepo, nsRPM, revision)
	for _, r := range records {
		fmt.Fprintf(&b, "  <data type=\"%s\">\n", r.Type)
		fmt.Fprintf(&b, "    <checksum type=\"sha256\">%s</checksum>\n", r.SHA256)
		fmt.Fprintf(&b, "    <open-checksum type=\"sha256\">%s</open-checksum>\n", r.OpenSHA256)
		b.WriteString("    <location")
		attr(&b, "href", r.Location)
		b.WriteString("/>\n")
		fmt.Fprintf(&b, "    <timestamp>%d</timestamp>\n    <size>%d</size>\n    <open-size>%d</open-size>\n  </data>\n", r.Timestamp, r.Size, r.OpenSize)
	}
	b.WriteString("</repomd>\n")
	return b.Bytes()
}
