package pkgmeta

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
)

type sums struct {
	size              int64
	sha256, md5, sha1 string
}

// checksum hashes a whole file once with every digest an index needs.
func checksum(r io.ReaderAt) (sums, error) {
	h256, h5, h1 := sha256.New(), md5.New(), sha1.New()
	n, err := io.Copy(io.MultiWriter(h256, h5, h1), io.NewSectionReader(r, 0, 1<<62))
	if err != nil {
		return sums{}, fmt.Errorf("checksum: %w", err)
	}
	return sums{
		size:   n,
		sha256: hex.EncodeToString(h256.Sum(nil)),
		md5:    hex.EncodeToString(h5.Sum(nil)),
		sha1:   hex.EncodeToString(h1.Sum(nil)),
	}, nil
}

func (s sums) fill(p *Package) {
	p.Size, p.SHA256, p.MD5, p.SHA1 = s.size, s.sha256, s.md5, s.sha1
}
