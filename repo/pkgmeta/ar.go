package pkgmeta

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// arMember is one member of a Unix ar archive, read in place.
type arMember struct {
	*io.SectionReader
	name string
}

// readAr lists the members of a common-format ar archive (the container of
// a .deb). It does not copy member data.
func readAr(r *io.SectionReader) ([]arMember, error) {
	magic := make([]byte, 8)
	if _, err := r.ReadAt(magic, 0); err != nil || string(magic) != "!<arch>\n" {
		return nil, fmt.Errorf("%w: not an ar archive", ErrCorrupt)
	}
	var out []arMember
	off := int64(8)
	hdr := make([]byte, 60)
	for off < r.Size() {
		if _, err := r.ReadAt(hdr, off); err != nil {
			return nil, fmt.Errorf("%w: truncated ar header at offset %d", ErrCorrupt, off)
		}
		if hdr[58] != '`' || hdr[59] != '\n' {
			return nil, fmt.Errorf("%w: bad ar header at offset %d", ErrCorrupt, off)
		}
		size, err := strconv.ParseInt(strings.TrimSpace(string(hdr[48:58])), 10, 64)
		if err != nil || size < 0 || off+60+size > r.Size() {
			return nil, fmt.Errorf("%w: bad ar member size at offset %d", ErrCorrupt, off)
		}
		// GNU ar ends names with '/'; dpkg does not but tolerates it.
		name := strings.TrimSuffix(strings.TrimSpace(string(hdr[0:16])), "/")
		out = append(out, arMember{SectionReader: io.NewSectionReader(r, off+60, size), name: name})
		off += 60 + size + size%2
	}
	return out, nil
}

func memberNames(ms []arMember) []string {
	names := make([]string, len(ms))
	for i, m := range ms {
		names[i] = m.name
	}
	return names
}
