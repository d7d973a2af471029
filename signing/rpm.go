package signing

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// RPMSignFn returns a signer for rpmpack's RPM.SetPGPSigner. rpmpack calls it
// twice: with the main header (→ the header-only signature, tag 268) and
// with header+payload (→ the legacy tag 1002). Only the header crosses the
// wire; for the second call the payload is hashed here and only the SHA-256
// state is sent.
func RPMSignFn(ctx context.Context, c Client, key string) func([]byte) ([]byte, error) {
	return func(data []byte) ([]byte, error) {
		n, err := rpmHeaderLen(data)
		if err != nil {
			return nil, fmt.Errorf("sign rpm: %w", err)
		}
		if n > len(data) {
			return nil, fmt.Errorf("sign rpm: %w: truncated header (%d of %d bytes)", ErrBadRequest, len(data), n)
		}
		name := rpmItemName(data[:n])
		if n == len(data) {
			return signSingle(ctx, c, Request{Key: key, Kind: KindRPMHeader, Name: name + " header", Data: data})
		}
		h := sha256.New()
		h.Write(data)
		state, err := h.(encoding.BinaryMarshaler).MarshalBinary()
		if err != nil {
			return nil, fmt.Errorf("sign rpm: marshal sha256 state: %w", err)
		}
		return signSingle(ctx, c, Request{Key: key, Kind: KindSHA256State, Name: name + " header+payload", Data: state})
	}
}

// NFPMSignFn adapts RPMSignFn to nfpm's RPMSignature.SignFn.
func NFPMSignFn(ctx context.Context, c Client, key string) func(io.Reader) ([]byte, error) {
	sign := RPMSignFn(ctx, c, key)
	return func(r io.Reader) ([]byte, error) {
		data, err := io.ReadAll(r)
		if err != nil {
			return nil, fmt.Errorf("sign rpm: read data: %w", err)
		}
		return sign(data)
	}
}

// rpmItemName names a package for the audit log from its main header
// (NAME-VERSION-RELEASE.ARCH), or "rpm" if the header does not say.
func rpmItemName(hdr []byte) string {
	entries, err := parseRPMHeader(hdr)
	if err != nil {
		return "rpm"
	}
	tags := map[uint32]string{}
	for _, e := range entries {
		if e.typ == rpmTypeString || e.typ == rpmTypeI18NString {
			tags[e.tag] = strings.TrimRight(string(e.data), "\x00")
		}
	}
	if tags[1000] == "" {
		return "rpm"
	}
	return fmt.Sprintf("%s-%s-%s.%s", tags[1000], tags[1001], tags[1002], tags[1022])
}

// SignRPM copies the package in r to w with a new header-only signature
// (tag 268) made by key. Older OpenPGP signatures and the reserved space
// rpmsign leaves are dropped; digests are kept, since the header and payload
// are not changed. Only the main header is sent to the signer.
func SignRPM(ctx context.Context, c Client, key string, r io.Reader, w io.Writer) error {
	lead := make([]byte, rpmLeadSize)
	if _, err := io.ReadFull(r, lead); err != nil {
		return fmt.Errorf("sign rpm: read lead: %w", err)
	}
	if !bytes.Equal(lead[:4], rpmLeadMagic) {
		return fmt.Errorf("sign rpm: %w: not an rpm file (bad lead magic)", ErrBadRequest)
	}
	sigHdr, err := readRPMHeader(r)
	if err != nil {
		return fmt.Errorf("sign rpm: signature header: %w", err)
	}
	if pad := (8 - len(sigHdr)%8) % 8; pad > 0 {
		if _, err := io.CopyN(io.Discard, r, int64(pad)); err != nil {
			return fmt.Errorf("sign rpm: signature header padding: %w", err)
		}
	}
	mainHdr, err := readRPMHeader(r)
	if err != nil {
		return fmt.Errorf("sign rpm: main header: %w", err)
	}
	sig, err := signSingle(ctx, c, Request{Key: key, Kind: KindRPMHeader, Name: rpmItemName(mainHdr) + " header", Data: mainHdr})
	if err != nil {
		return fmt.Errorf("sign rpm: %w", err)
	}
	old, err := parseRPMHeader(sigHdr)
	if err != nil {
		return fmt.Errorf("sign rpm: signature header: %w", err)
	}
	entries := []rpmEntry{{tag: sigTagRSA, typ: rpmTypeBin, count: uint32(len(sig)), data: sig}}
	for _, e := range old {
		switch e.tag {
		case sigTagDSA, sigTagRSA, sigTagPGP, sigTagGPG, sigTagReservedSpace:
		default:
			entries = append(entries, e)
		}
	}
	for _, b := range [][]byte{lead, encodeSignatureHeader(entries), mainHdr} {
		if _, err := w.Write(b); err != nil {
			return fmt.Errorf("sign rpm: write: %w", err)
		}
	}
	if _, err := io.Copy(w, r); err != nil {
		return fmt.Errorf("sign rpm: copy payload: %w", err)
	}
	return nil
}

// SignRPMFile re-signs an rpm in place (for packages made by rpmbuild or
// mock): the new file is written beside it and renamed over it, so a reader
// never sees a half-written package.
func SignRPMFile(ctx context.Context, c Client, key, path string) (err error) {
	in, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("sign rpm %s: %w", path, err)
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return fmt.Errorf("sign rpm %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("sign rpm %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := SignRPM(ctx, c, key, in, tmp); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := tmp.Chmod(st.Mode().Perm()); err != nil {
		return fmt.Errorf("sign rpm %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("sign rpm %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("sign rpm %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("sign rpm %s: %w", path, err)
	}
	return nil
}
