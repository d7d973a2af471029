// Package apt writes the indexes of a Debian archive from package metadata
// read at upload: Packages paragraphs, pool paths and the Release file.
package apt

import (
	"bytes"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/kiln-build/kiln/repo/pkgmeta"
)

// dateFormat is RFC 2822 in UTC, as apt parses Date and Valid-Until.
const dateFormat = "Mon, 02 Jan 2006 15:04:05 UTC"

// Archive areas. Component holds every package clients install; Debug
// holds the automatic debug-symbol packages (-dbgsym), which a client
// opts into by adding the component to its sources.
const (
	Component = "main"
	Debug     = "debug"
)

// Components are the areas every dist of a Kiln archive has, in Release
// order.
var Components = []string{Component, Debug}

// ComponentOf is the area that lists p.
func ComponentOf(p *pkgmeta.Package) string {
	if p.IsDebug() {
		return Debug
	}
	return Component
}

// PoolPath is where a package lives relative to the archive root:
// pool/<codename>/<component>/<l or libX>/<source>/<file>. The codename
// level keeps builds of the same version for two releases (same file name,
// different bytes) apart.
func PoolPath(codename string, p *pkgmeta.Package) string {
	prefix := p.Source[:1]
	if strings.HasPrefix(p.Source, "lib") && len(p.Source) > 3 {
		prefix = p.Source[:4]
	}
	return path.Join("pool", codename, ComponentOf(p), prefix, p.Source, p.FileName)
}

// Paragraph writes one Packages stanza: the control paragraph with the
// archive's own fields (Filename, Size, MD5sum, SHA256) before Description,
// where dpkg-scanpackages puts them.
func Paragraph(buf *bytes.Buffer, p *pkgmeta.Package, filename string) {
	wroteFile := false
	writeFile := func() {
		pkgmeta.WriteField(buf, "Filename", filename)
		pkgmeta.WriteField(buf, "Size", strconv.FormatInt(p.Size, 10))
		pkgmeta.WriteField(buf, "MD5sum", p.MD5)
		pkgmeta.WriteField(buf, "SHA256", p.SHA256)
		wroteFile = true
	}
	for _, f := range p.Control {
		switch f.Name {
		case "Filename", "Size", "MD5sum", "SHA1", "SHA256", "SHA512":
			continue // the archive's values replace whatever the control file says
		case "Description":
			if !wroteFile {
				writeFile()
			}
		}
		pkgmeta.WriteField(buf, f.Name, f.Value)
	}
	if !wroteFile {
		writeFile()
	}
	buf.WriteByte('\n')
}

// SourceParagraph writes one Sources stanza for a source package whose
// files sit in dir (relative to the archive root): the .dsc's fields with
// Source renamed Package, the checksum lists extended by the .dsc itself,
// and Directory, as apt-get source reads them. Checksums-Sha1 is left out:
// the farm keeps no SHA-1 of the listed files, and SHA-256 is what apt
// verifies when it has it.
func SourceParagraph(buf *bytes.Buffer, p *pkgmeta.Package, dir string) {
	pkgmeta.WriteField(buf, "Package", p.Name)
	for _, f := range p.Control {
		switch f.Name {
		case "Source", "Files", "Checksums-Sha1", "Checksums-Sha256", "Checksums-Sha512", "Directory", "Package":
			continue
		}
		pkgmeta.WriteField(buf, f.Name, f.Value)
	}
	list := func(name string, sum func(f pkgmeta.SourceFile) string) {
		var b strings.Builder
		all := append([]pkgmeta.SourceFile{{Name: p.FileName, Size: p.Size, SHA256: p.SHA256, MD5: p.MD5}}, p.Files...)
		for _, f := range all {
			fmt.Fprintf(&b, "\n %s %d %s", sum(f), f.Size, f.Name)
		}
		pkgmeta.WriteField(buf, name, b.String())
	}
	list("Files", func(f pkgmeta.SourceFile) string { return f.MD5 })
	list("Checksums-Sha256", func(f pkgmeta.SourceFile) string { return f.SHA256 })
	pkgmeta.WriteField(buf, "Directory", dir)
	buf.WriteByte('\n')
}

// IndexFile is one file listed in Release, relative to dists/<codename>/.
type IndexFile struct {
	Path   string
	Size   int64
	SHA256 string
}

// Release describes one dists/<codename>/Release.
type Release struct {
	Origin, Label, Suite, Codename, Description string
	Date                                        time.Time
	ValidFor                                    time.Duration // 0: no Valid-Until
	Architectures                               []string
	Files                                       []IndexFile
}

// Bytes renders the Release file. Only SHA256 is listed, so SHA256 is the
// strongest hash and by-hash/SHA256 is what apt fetches.
func (r Release) Bytes() []byte {
	var b bytes.Buffer
	field := func(k, v string) {
		if v != "" {
			pkgmeta.WriteField(&b, k, v)
		}
	}
	field("Origin", r.Origin)
	field("Label", r.Label)
	field("Suite", r.Suite)
	field("Codename", r.Codename)
	field("Description", r.Description)
	field("Date", r.Date.UTC().Format(dateFormat))
	if r.ValidFor > 0 {
		field("Valid-Until", r.Date.Add(r.ValidFor).UTC().Format(dateFormat))
	}
	archs := append([]string(nil), r.Architectures...)
	sort.Strings(archs)
	field("Architectures", strings.Join(archs, " "))
	field("Components", strings.Join(Components, " "))
	field("Acquire-By-Hash", "yes")
	files := append([]IndexFile(nil), r.Files...)
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	b.WriteString("SHA256:\n")
	for _, f := range files {
		fmt.Fprintf(&b, " %s %16d %s\n", f.SHA256, f.Size, f.Path)
	}
	return b.Bytes()
}
