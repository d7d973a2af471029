package repo

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"github.com/ulikunitz/xz/lzma"
)

// An .xz file is a stream of independently compressed blocks plus an index
// of their sizes. Compressing each chunk of an index as its own block lets a
// publish recompress only the chunks that changed and splice the rest; apt
// and xz(1) read multi-block streams like any other. (Concatenated streams
// would be simpler but apt stops after the first one.)

// A chunk is some tens of kilobytes, so a 64 KiB window loses almost
// nothing and keeps the encoder's per-block allocation small.
const (
	xzDictCap  = 64 << 10
	xzDictProp = 8 // LZMA2 dictionary size property for 64 KiB: 2 << (8/2 + 11)
	xzCheckLen = 4 // CRC32
)

var (
	xzMagic  = []byte{0xfd, '7', 'z', 'X', 'Z', 0}
	xzFlags  = []byte{0, 1} // check type CRC32
	xzFooter = []byte{'Y', 'Z'}
)

// xzBlock is one complete block: header, LZMA2 data, padding and check.
type xzBlock struct {
	data         []byte
	unpadded     int64 // header + compressed data + check, as the index records it
	uncompressed int64
}

func crcLE(b []byte) []byte {
	return binary.LittleEndian.AppendUint32(nil, crc32.ChecksumIEEE(b))
}

func newXZBlock(plain []byte) (xzBlock, error) {
	var comp bytes.Buffer
	w, err := lzma.Writer2Config{DictCap: xzDictCap}.NewWriter2(&comp)
	if err != nil {
		return xzBlock{}, fmt.Errorf("xz block: %w", err)
	}
	if _, err := w.Write(plain); err != nil {
		return xzBlock{}, fmt.Errorf("xz block: %w", err)
	}
	if err := w.Close(); err != nil {
		return xzBlock{}, fmt.Errorf("xz block: %w", err)
	}
	// Header: size byte, flags (one filter, no optional sizes), LZMA2 filter
	// id 0x21 with one property byte, zero padding to 8 bytes, CRC32.
	hdr := []byte{0, 0, 0x21, 1, xzDictProp, 0, 0, 0}
	hdr[0] = byte((len(hdr)+4)/4 - 1)
	hdr = append(hdr, crcLE(hdr)...)
	out := make([]byte, 0, len(hdr)+comp.Len()+3+xzCheckLen)
	out = append(out, hdr...)
	out = append(out, comp.Bytes()...)
	unpadded := int64(len(hdr) + comp.Len() + xzCheckLen)
	for len(out)%4 != 0 {
		out = append(out, 0)
	}
	out = binary.LittleEndian.AppendUint32(out, crc32.ChecksumIEEE(plain))
	return xzBlock{data: out, unpadded: unpadded, uncompressed: int64(len(plain))}, nil
}

// xzStream wraps blocks into one .xz stream.
func xzStream(blocks []xzBlock) []byte {
	size := 12 + 12
	for _, b := range blocks {
		size += len(b.data)
	}
	out := make([]byte, 0, size+16*len(blocks)+16)
	out = append(out, xzMagic...)
	out = append(out, xzFlags...)
	out = append(out, crcLE(xzFlags)...)
	for _, b := range blocks {
		out = append(out, b.data...)
	}
	index := []byte{0}
	index = binary.AppendUvarint(index, uint64(len(blocks)))
	for _, b := range blocks {
		index = binary.AppendUvarint(index, uint64(b.unpadded))
		index = binary.AppendUvarint(index, uint64(b.uncompressed))
	}
	for len(index)%4 != 0 {
		index = append(index, 0)
	}
	index = append(index, crcLE(index)...)
	out = append(out, index...)
	footer := binary.LittleEndian.AppendUint32(nil, uint32(len(index)/4-1))
	footer = append(footer, xzFlags...)
	out = append(out, crcLE(footer)...)
	out = append(out, footer...)
	return append(out, xzFooter...)
}
