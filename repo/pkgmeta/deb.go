package pkgmeta

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// maxControlSize bounds the control member we are willing to hold in memory.
const maxControlSize = 16 << 20

// ReadDeb reads a .deb's control paragraph and checksums. The whole file is
// read: the data member is decompressed to its end so that a damaged payload
// is caught at upload, not on a client.
func ReadDeb(path string) (*Package, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read deb: %w", err)
	}
	defer f.Close()
	sums, err := checksum(f)
	if err != nil {
		return nil, fmt.Errorf("read deb %s: %w", path, err)
	}
	p, err := parseDeb(io.NewSectionReader(f, 0, sums.size))
	if err != nil {
		return nil, fmt.Errorf("read deb %s: %w", filepath.Base(path), err)
	}
	sums.fill(p)
	p.Path = path
	return p, nil
}

func parseDeb(r *io.SectionReader) (*Package, error) {
	members, err := readAr(r)
	if err != nil {
		return nil, err
	}
	if len(members) < 3 || members[0].name != "debian-binary" {
		return nil, fmt.Errorf("%w: not a Debian binary package (ar members %v)", ErrCorrupt, memberNames(members))
	}
	magic := make([]byte, 4)
	if _, err := members[0].ReadAt(magic, 0); err != nil || string(magic) != "2.0\n" {
		return nil, fmt.Errorf("%w: debian-binary is not \"2.0\"", ErrCorrupt)
	}
	var control []byte
	var sawData bool
	for _, m := range members[1:] {
		switch {
		case strings.HasPrefix(m.name, "control.tar"):
			if control, err = controlFile(m); err != nil {
				return nil, fmt.Errorf("%s: %w", m.name, err)
			}
		case strings.HasPrefix(m.name, "data.tar"):
			if err := walkTar(m, nil); err != nil {
				return nil, fmt.Errorf("%s: %w", m.name, err)
			}
			sawData = true
		}
	}
	if control == nil || !sawData {
		return nil, fmt.Errorf("%w: missing control or data member (ar members %v)", ErrCorrupt, memberNames(members))
	}
	fields, err := ParseControl(control)
	if err != nil {
		return nil, err
	}
	return debPackage(fields)
}

func debPackage(fields []Field) (*Package, error) {
	p := &Package{Format: Deb, Control: fields}
	p.Name = p.Field("Package")
	p.Version = p.Field("Version")
	p.Arch = p.Field("Architecture")
	if err := checkToken("package name", p.Name, "+-."); err != nil {
		return nil, err
	}
	noEpoch, err := p.debVersion()
	if err != nil {
		return nil, err
	}
	if err := checkToken("architecture", p.Arch, "-"); err != nil {
		return nil, err
	}
	p.Source = p.Name
	if src := p.Field("Source"); src != "" {
		p.Source, _, _ = strings.Cut(src, " ")
		if err := checkToken("source name", p.Source, "+-."); err != nil {
			return nil, err
		}
	}
	// Pool file names never carry the epoch, as in Debian's archive.
	p.FileName = p.Name + "_" + noEpoch + "_" + p.Arch + ".deb"
	if err := CheckFileName(p.FileName); err != nil {
		return nil, err
	}
	return p, nil
}

// debVersion checks a Debian version, sets the epoch from it and returns
// the version without the epoch, as file names carry it.
func (p *Package) debVersion() (string, error) {
	if err := checkToken("version", p.Version, ".+~:-"); err != nil {
		return "", err
	}
	e, noEpoch, ok := strings.Cut(p.Version, ":")
	if !ok {
		return p.Version, nil
	}
	n, err := strconv.Atoi(e)
	if err != nil {
		return "", fmt.Errorf("%w: bad epoch in version %q", ErrCorrupt, p.Version)
	}
	p.Epoch = n
	return noEpoch, nil
}

// controlFile extracts ./control from a control.tar{,.gz,.xz,.zst} member.
func controlFile(m arMember) ([]byte, error) {
	var out []byte
	err := walkTar(m, func(h *tar.Header, r io.Reader) error {
		if strings.TrimPrefix(h.Name, "./") != "control" {
			return nil
		}
		b, err := io.ReadAll(io.LimitReader(r, maxControlSize+1))
		if err != nil {
			return err
		}
		if len(b) > maxControlSize {
			return fmt.Errorf("%w: control file larger than %d bytes", ErrCorrupt, maxControlSize)
		}
		out = b
		return nil
	})
	if err != nil {
		return nil, err
	}
	if out == nil {
		return nil, fmt.Errorf("%w: no control file", ErrCorrupt)
	}
	return out, nil
}

// walkTar decompresses a tar member by its suffix and visits every entry, so
// compression checksums and tar structure are verified to the end.
func walkTar(m arMember, visit func(*tar.Header, io.Reader) error) error {
	var r io.Reader = io.NewSectionReader(m, 0, m.Size())
	switch ext := filepath.Ext(m.name); ext {
	case ".tar":
	case ".gz":
		z, err := gzip.NewReader(r)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		defer z.Close()
		r = z
	case ".xz":
		z, err := xz.NewReader(r)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		r = z
	case ".zst":
		z, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		defer z.Close()
		r = z
	default:
		return fmt.Errorf("%w: unsupported compression %q", ErrCorrupt, ext)
	}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		if visit != nil {
			if err := visit(h, tr); err != nil {
				return err
			}
		}
	}
	// Read past the tar end marker so trailing compressed data is checked too.
	if _, err := io.Copy(io.Discard, r); err != nil {
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return nil
}

// ParseControl parses one Debian control paragraph.
func ParseControl(b []byte) ([]Field, error) {
	var fields []Field
	for i, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		if line == "" {
			return nil, fmt.Errorf("%w: control: blank line %d inside the paragraph", ErrCorrupt, i+1)
		}
		if line[0] == ' ' || line[0] == '\t' {
			if len(fields) == 0 {
				return nil, fmt.Errorf("%w: control: line %d continues no field", ErrCorrupt, i+1)
			}
			fields[len(fields)-1].Value += "\n" + line
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok || name == "" || strings.ContainsAny(name, " \t") {
			return nil, fmt.Errorf("%w: control: line %d is not \"Field: value\"", ErrCorrupt, i+1)
		}
		fields = append(fields, Field{Name: name, Value: strings.TrimSpace(value)})
	}
	if len(fields) == 0 {
		return nil, fmt.Errorf("%w: control: empty paragraph", ErrCorrupt)
	}
	return fields, nil
}

// WriteField appends "Name: Value\n" in control syntax.
func WriteField(buf *bytes.Buffer, name, value string) {
	buf.WriteString(name)
	buf.WriteByte(':')
	if value != "" && value[0] != '\n' {
		buf.WriteByte(' ')
	}
	buf.WriteString(value)
	buf.WriteByte('\n')
}
