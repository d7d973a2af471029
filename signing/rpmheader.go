package signing

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
)

// rpm file layout (rpm's lib/header.c and the LSB package format): a 96-byte
// lead, the signature header padded to 8 bytes, the main header, the payload.
// A header is: magic (8 bytes), index count, store size, 16-byte index
// entries (tag, type, offset, count; big-endian), then the data store.
const (
	rpmLeadSize       = 96
	rpmHeaderPreamble = 16
	rpmIndexEntrySize = 16
	// rpm refuses headers above 256 MiB (hdrchkData); so do we, before
	// allocating.
	rpmMaxHeaderBytes = 256 << 20

	tagHeaderSignatures = 62
	sigTagDSA           = 267 // header-only DSA
	sigTagRSA           = 268 // header-only OpenPGP signature (RSA, and EdDSA in rpm ≥ 4.16)
	sigTagPGP           = 1002
	sigTagGPG           = 1005
	sigTagReservedSpace = 1008

	rpmTypeInt16       = 3
	rpmTypeInt32       = 4
	rpmTypeInt64       = 5
	rpmTypeString      = 6
	rpmTypeBin         = 7
	rpmTypeStringArray = 8
	rpmTypeI18NString  = 9
)

var (
	rpmLeadMagic   = []byte{0xed, 0xab, 0xee, 0xdb}
	rpmHeaderMagic = []byte{0x8e, 0xad, 0xe8, 0x01, 0, 0, 0, 0}
)

type rpmEntry struct {
	tag, typ, count uint32
	data            []byte
}

// rpmHeaderLen returns the full length of the header starting at b[0:16],
// after checking its magic.
func rpmHeaderLen(pre []byte) (int, error) {
	if len(pre) < rpmHeaderPreamble || !bytes.Equal(pre[:8], rpmHeaderMagic) {
		return 0, fmt.Errorf("%w: not an rpm header (bad magic)", ErrBadRequest)
	}
	n := int64(binary.BigEndian.Uint32(pre[8:]))
	size := int64(binary.BigEndian.Uint32(pre[12:]))
	total := rpmHeaderPreamble + n*rpmIndexEntrySize + size
	if total > rpmMaxHeaderBytes {
		return 0, fmt.Errorf("%w: rpm header of %d bytes", ErrTooLarge, total)
	}
	return int(total), nil
}

// checkRPMHeader accepts exactly one header structure and nothing after
// it: a header-signing request must never carry payload.
func checkRPMHeader(b []byte) error {
	n, err := rpmHeaderLen(b)
	if err != nil {
		return err
	}
	if n != len(b) {
		return fmt.Errorf("%w: %d bytes given for an rpm header of %d bytes (header only, no payload)", ErrBadRequest, len(b), n)
	}
	_, err = parseRPMHeader(b)
	return err
}

// parseRPMHeader returns the entries of a header, without its region tag;
// b must be exactly one header.
func parseRPMHeader(b []byte) ([]rpmEntry, error) {
	total, err := rpmHeaderLen(b)
	if err != nil {
		return nil, err
	}
	if total != len(b) {
		return nil, fmt.Errorf("%w: %d bytes given for an rpm header of %d bytes", ErrBadRequest, len(b), total)
	}
	n := int(binary.BigEndian.Uint32(b[8:]))
	store := b[rpmHeaderPreamble+n*rpmIndexEntrySize:]
	var out []rpmEntry
	for i := range n {
		e := b[rpmHeaderPreamble+i*rpmIndexEntrySize:]
		tag, typ := binary.BigEndian.Uint32(e), binary.BigEndian.Uint32(e[4:])
		off, count := binary.BigEndian.Uint32(e[8:]), binary.BigEndian.Uint32(e[12:])
		if int64(off) >= int64(len(store)) {
			return nil, fmt.Errorf("%w: rpm header entry %d (tag %d) points outside the store", ErrBadRequest, i, tag)
		}
		size, err := rpmDataLen(typ, count, store[off:])
		if err != nil {
			return nil, fmt.Errorf("rpm header entry %d (tag %d): %w", i, tag, err)
		}
		if tag == tagHeaderSignatures || tag == 63 {
			continue // region marker; rebuilt on write
		}
		out = append(out, rpmEntry{tag: tag, typ: typ, count: count, data: store[off : int(off)+size]})
	}
	return out, nil
}

// rpmFixedWidth is the element size of the fixed-size rpm types (CHAR,
// INT8, INT16, INT32, INT64, BIN).
var rpmFixedWidth = map[uint32]int{1: 1, 2: 1, rpmTypeInt16: 2, rpmTypeInt32: 4, rpmTypeInt64: 8, rpmTypeBin: 1}

func rpmDataLen(typ, count uint32, data []byte) (int, error) {
	if w, ok := rpmFixedWidth[typ]; ok {
		n := int64(count) * int64(w)
		if n > int64(len(data)) {
			return 0, fmt.Errorf("%w: rpm header data overruns the store", ErrBadRequest)
		}
		return int(n), nil
	}
	switch typ {
	case rpmTypeString, rpmTypeStringArray, rpmTypeI18NString:
		strs := count
		if typ == rpmTypeString {
			strs = 1
		}
		pos := 0
		for range strs {
			i := bytes.IndexByte(data[pos:], 0)
			if i < 0 {
				return 0, fmt.Errorf("%w: unterminated string in rpm header", ErrBadRequest)
			}
			pos += i + 1
		}
		return pos, nil
	}
	return 0, fmt.Errorf("%w: rpm header type %d", ErrBadRequest, typ)
}

// encodeSignatureHeader writes a signature header with its region tag,
// entries sorted by tag and each datum aligned as rpm requires, padded to 8.
func encodeSignatureHeader(entries []rpmEntry) []byte {
	slices.SortFunc(entries, func(a, b rpmEntry) int { return int(a.tag) - int(b.tag) })
	align := map[uint32]int{rpmTypeInt16: 2, rpmTypeInt32: 4, rpmTypeInt64: 8} // rpm's hdrchkAlign
	var store bytes.Buffer
	offsets := make([]int, len(entries))
	for i, e := range entries {
		if a := align[e.typ]; a > 0 && store.Len()%a != 0 {
			store.Write(make([]byte, a-store.Len()%a))
		}
		offsets[i] = store.Len()
		store.Write(e.data)
	}
	nindex := len(entries) + 1
	trailerOff := store.Len()
	binary.Write(&store, binary.BigEndian, []int32{tagHeaderSignatures, rpmTypeBin, int32(-rpmIndexEntrySize * nindex), rpmIndexEntrySize})

	var out bytes.Buffer
	out.Write(rpmHeaderMagic)
	binary.Write(&out, binary.BigEndian, []uint32{uint32(nindex), uint32(store.Len())})
	binary.Write(&out, binary.BigEndian, []uint32{tagHeaderSignatures, rpmTypeBin, uint32(trailerOff), rpmIndexEntrySize})
	for i, e := range entries {
		binary.Write(&out, binary.BigEndian, []uint32{e.tag, e.typ, uint32(offsets[i]), e.count})
	}
	out.Write(store.Bytes())
	if r := out.Len() % 8; r != 0 {
		out.Write(make([]byte, 8-r))
	}
	return out.Bytes()
}

// readRPMHeader reads one header from r.
func readRPMHeader(r io.Reader) ([]byte, error) {
	pre := make([]byte, rpmHeaderPreamble)
	if _, err := io.ReadFull(r, pre); err != nil {
		return nil, fmt.Errorf("read rpm header: %w", err)
	}
	n, err := rpmHeaderLen(pre)
	if err != nil {
		return nil, err
	}
	b := make([]byte, n)
	copy(b, pre)
	if _, err := io.ReadFull(r, b[rpmHeaderPreamble:]); err != nil {
		return nil, fmt.Errorf("read rpm header: %w", err)
	}
	if _, err := parseRPMHeader(b); err != nil {
		return nil, err
	}
	return b, nil
}
