package pkgmeta

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// SourceArch is the Arch of a Debian source package (.dsc): it belongs to
// every architecture of its distribution, and the archive lists it in
// Sources rather than in a Packages index.
const SourceArch = "source"

// maxDSC bounds a .dsc: a control paragraph a few kilobytes long, even
// with hundreds of binary packages.
const maxDSC = 1 << 20

// maxSourceFiles bounds what a .dsc may list: the tarballs and their
// signatures of a multi-component orig are a handful.
const maxSourceFiles = 32

// SourceFile is one file a source package lists besides its .dsc (the orig
// tarball, its signature, the Debian tarball or diff), which is published
// next to it.
type SourceFile struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	MD5    string `json:"md5"`
	// Path is where the caller keeps the file, as Package.Path.
	Path string `json:"path,omitempty"`
}

// SourceRPMArch is the Arch of a source rpm.
const SourceRPMArch = "src"

// IsSource reports whether p is a source package: a Debian .dsc or a
// source rpm.
func (p *Package) IsSource() bool {
	return p.Format == Deb && p.Arch == SourceArch || p.Format == RPM && p.Arch == SourceRPMArch
}

// ReadDSC reads a Debian source control file: its fields, and the files it
// lists with their sizes and checksums (Files for MD5, Checksums-Sha256).
// A clearsigned .dsc is read through its signature, which is not checked:
// the farm's own signature on the index is what clients verify. Listed
// files must be plain names that start with the source's name, as
// dpkg-source makes them, so that a hostile .dsc cannot place files
// anywhere else in the pool.
func ReadDSC(path string) (*Package, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read dsc: %w", err)
	}
	defer f.Close()
	sums, err := checksum(f)
	if err != nil {
		return nil, fmt.Errorf("read dsc %s: %w", filepath.Base(path), err)
	}
	if sums.size > maxDSC {
		return nil, fmt.Errorf("read dsc %s: %w: %d bytes, more than %d", filepath.Base(path), ErrCorrupt, sums.size, maxDSC)
	}
	raw, err := io.ReadAll(io.NewSectionReader(f, 0, sums.size))
	if err != nil {
		return nil, fmt.Errorf("read dsc %s: %w", filepath.Base(path), err)
	}
	p, err := parseDSC(raw)
	if err != nil {
		return nil, fmt.Errorf("read dsc %s: %w", filepath.Base(path), err)
	}
	sums.fill(p)
	p.Path = path
	return p, nil
}

func parseDSC(raw []byte) (*Package, error) {
	fields, err := ParseControl(unsign(raw))
	if err != nil {
		return nil, err
	}
	p := &Package{Format: Deb, Arch: SourceArch, Control: fields}
	p.Name, p.Version = p.Field("Source"), p.Field("Version")
	if err := checkToken("source name", p.Name, "+-."); err != nil {
		return nil, err
	}
	noEpoch, err := p.debVersion()
	if err != nil {
		return nil, err
	}
	p.Source = p.Name
	p.FileName = p.Name + "_" + noEpoch + ".dsc"
	if err := CheckFileName(p.FileName); err != nil {
		return nil, err
	}
	md5s, err := listedSums(p.Field("Files"), "Files")
	if err != nil {
		return nil, err
	}
	shas, err := listedSums(p.Field("Checksums-Sha256"), "Checksums-Sha256")
	if err != nil {
		return nil, err
	}
	if len(md5s) == 0 || len(md5s) > maxSourceFiles || len(md5s) != len(shas) {
		return nil, fmt.Errorf("%w: Files lists %d files, Checksums-Sha256 %d (want 1 to %d, the same)", ErrCorrupt, len(md5s), len(shas), maxSourceFiles)
	}
	for _, m := range md5s {
		if !strings.HasPrefix(m.Name, p.Name+"_") {
			return nil, fmt.Errorf("%w: %s lists %q, which is not %s_*", ErrUnsafeName, p.FileName, m.Name, p.Name)
		}
		i := slices.IndexFunc(shas, func(s listedSum) bool { return s.Name == m.Name })
		if i < 0 || shas[i].Size != m.Size {
			return nil, fmt.Errorf("%w: %s is in Files but not in Checksums-Sha256 with the same size", ErrCorrupt, m.Name)
		}
		if slices.ContainsFunc(p.Files, func(f SourceFile) bool { return f.Name == m.Name }) {
			return nil, fmt.Errorf("%w: %s listed twice", ErrCorrupt, m.Name)
		}
		p.Files = append(p.Files, SourceFile{Name: m.Name, Size: m.Size, MD5: m.sum, SHA256: shas[i].sum})
	}
	return p, nil
}

type listedSum struct {
	sum, Name string
	Size      int64
}

// listedSums parses the lines "CHECKSUM SIZE NAME" of a multi-line field.
func listedSums(value, field string) ([]listedSum, error) {
	var out []listedSum
	for _, line := range strings.Split(value, "\n") {
		words := strings.Fields(line)
		if len(words) == 0 {
			continue
		}
		if len(words) != 3 {
			return nil, fmt.Errorf("%w: %s line %q is not \"CHECKSUM SIZE NAME\"", ErrCorrupt, field, line)
		}
		size, err := strconv.ParseInt(words[1], 10, 64)
		if err != nil || size < 0 {
			return nil, fmt.Errorf("%w: %s: bad size %q", ErrCorrupt, field, words[1])
		}
		if err := CheckFileName(words[2]); err != nil {
			return nil, err
		}
		for _, r := range words[0] {
			if !strings.ContainsRune("0123456789abcdef", r) {
				return nil, fmt.Errorf("%w: %s: bad checksum %q", ErrCorrupt, field, words[0])
			}
		}
		out = append(out, listedSum{sum: words[0], Size: size, Name: words[2]})
	}
	return out, nil
}

// unsign returns the signed text of a clearsigned message (RFC 4880 §7),
// or raw as it is.
func unsign(raw []byte) []byte {
	const begin = "-----BEGIN PGP SIGNED MESSAGE-----\n"
	raw = bytes.ReplaceAll(raw, []byte("\r\n"), []byte("\n"))
	if !bytes.HasPrefix(raw, []byte(begin)) {
		return bytes.TrimSpace(raw)
	}
	body := raw[len(begin):]
	if _, after, ok := bytes.Cut(body, []byte("\n\n")); ok { // the armor headers (Hash:) end at a blank line
		body = after
	}
	if before, _, ok := bytes.Cut(body, []byte("\n-----BEGIN PGP SIGNATURE-----")); ok {
		body = before
	}
	lines := bytes.Split(body, []byte("\n"))
	for i, l := range lines {
		lines[i] = bytes.TrimPrefix(l, []byte("- "))
	}
	return bytes.TrimSpace(bytes.Join(lines, []byte("\n")))
}
