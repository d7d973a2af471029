package pkgmeta

import (
	"encoding/binary"
	"fmt"
	"io"
)

// maxRPMIndex bounds the number of tags a header may declare.
const maxRPMIndex = 1 << 16

// rpmTypeSize is the size of one value of each rpm tag type (NULL, CHAR,
// INT8, INT16, INT32, INT64, STRING, BIN, STRING_ARRAY, I18NSTRING); 0 marks
// the NULL and variable-length string types.
var rpmTypeSize = [...]int64{0: 0, 1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 0, 7: 1, 8: 0, 9: 0}

// checkRPMHeaders walks the signature and main header structures and
// checks every index entry against its header's data size before the rpm
// library decodes them: the library sizes its buffers from the declared
// counts, so a damaged count would otherwise exhaust memory.
func checkRPMHeaders(r *io.SectionReader) error {
	off := int64(rpmLeadSize)
	for i, name := range []string{"signature", "main"} {
		intro := make([]byte, 16)
		if _, err := r.ReadAt(intro, off); err != nil {
			return fmt.Errorf("%w: truncated %s header", ErrCorrupt, name)
		}
		if string(intro[:3]) != rpmHeaderMagic {
			return fmt.Errorf("%w: no %s header magic at offset %d", ErrCorrupt, name, off)
		}
		n := int64(binary.BigEndian.Uint32(intro[8:12]))
		size := int64(binary.BigEndian.Uint32(intro[12:16]))
		if n > maxRPMIndex || size > maxRPMHeaderLen || off+16+n*16+size > r.Size() {
			return fmt.Errorf("%w: %s header (%d tags, %d bytes) does not fit the file", ErrCorrupt, name, n, size)
		}
		index := make([]byte, n*16)
		if _, err := r.ReadAt(index, off+16); err != nil {
			return fmt.Errorf("%w: truncated %s header index", ErrCorrupt, name)
		}
		for e := range n {
			entry := index[e*16 : e*16+16]
			typ := int64(binary.BigEndian.Uint32(entry[4:8]))
			at := int64(binary.BigEndian.Uint32(entry[8:12]))
			count := int64(binary.BigEndian.Uint32(entry[12:16]))
			if typ >= int64(len(rpmTypeSize)) || count < 1 || at >= size {
				return fmt.Errorf("%w: %s header tag %d: bad type, count or offset", ErrCorrupt, name, e)
			}
			width := rpmTypeSize[typ]
			if width == 0 {
				width = 1 // each string is at least its terminating NUL
			}
			if count > (size-at)/width {
				return fmt.Errorf("%w: %s header tag %d overruns the header data", ErrCorrupt, name, e)
			}
		}
		off += 16 + n*16 + size
		if i == 0 {
			off += (8 - size%8) % 8 // the signature header is padded to 8 bytes
		}
	}
	return nil
}
