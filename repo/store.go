package repo

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
)

// ErrChecksum means a package file's bytes differ from the checksum its
// metadata recorded at upload.
var ErrChecksum = errors.New("checksum mismatch")

var sha256Hex = regexp.MustCompile(`^[0-9a-f]{64}$`)

// store is the content-addressed object store under ROOT/.store. Objects
// are written once, read-only, and hard-linked into version trees and pools.
//
// Objects are not fsynced one by one: a publish syncs the whole filesystem
// once before it switches. An object left truncated by a crash before that
// sync has the wrong size, and has is checked by size, so it is rewritten.
type store struct{ dir string }

// has reports whether a complete object exists.
func (s store) has(sum string, size int64) bool {
	fi, err := os.Lstat(s.object(sum))
	return err == nil && fi.Size() == size
}

func (s store) object(sum string) string { return filepath.Join(s.dir, sum[:2], sum) }

// putBytes stores data and returns its sha256.
func (s store) putBytes(data []byte) (string, error) {
	h := sha256.Sum256(data)
	return s.putSummed(data, hex.EncodeToString(h[:]))
}

// putSummed stores data whose sha256 the caller already computed.
func (s store) putSummed(data []byte, sum string) (string, error) {
	if s.has(sum, int64(len(data))) {
		return sum, nil
	}
	err := s.write(sum, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
	return sum, err
}

// putFile copies a package file into the store unless an object with that
// checksum exists. The bytes are verified while copying, so a file changed
// since upload is refused rather than served under the wrong checksum.
func (s store) putFile(src, sum string, size int64) error {
	if !sha256Hex.MatchString(sum) {
		return fmt.Errorf("store %s: %w: bad sha256 %q", src, ErrInvalid, sum)
	}
	if s.has(sum, size) {
		return nil
	}
	f, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("store %s: %w", src, err)
	}
	defer f.Close()
	return s.write(sum, func(w io.Writer) error {
		h := sha256.New()
		n, err := io.Copy(io.MultiWriter(w, h), f)
		if err != nil {
			return err
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != sum || n != size {
			return fmt.Errorf("%w: %s has sha256 %s size %d, metadata says %s size %d", ErrChecksum, src, got, n, sum, size)
		}
		return nil
	})
}

// write creates an object through a temporary file and a rename, so an
// object name never shows a partly written file.
func (s store) write(sum string, fill func(io.Writer) error) error {
	dir := filepath.Dir(s.object(sum))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("store object %s: %w", sum, err)
	}
	tmp, err := os.CreateTemp(dir, ".tmp-")
	if err != nil {
		return fmt.Errorf("store object %s: %w", sum, err)
	}
	defer os.Remove(tmp.Name())
	if err := fill(tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("store object %s: %w", sum, err)
	}
	if err := tmp.Chmod(0o444); err != nil {
		tmp.Close()
		return fmt.Errorf("store object %s: %w", sum, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("store object %s: %w", sum, err)
	}
	if err := os.Rename(tmp.Name(), s.object(sum)); err != nil {
		return fmt.Errorf("store object %s: %w", sum, err)
	}
	return nil
}

// link makes dst (inside a version tree being built) a hard link to an object.
func (s store) link(sum, dst string) error {
	err := os.Link(s.object(sum), dst)
	if errors.Is(err, fs.ErrNotExist) {
		if err = os.MkdirAll(filepath.Dir(dst), 0o755); err == nil {
			err = os.Link(s.object(sum), dst)
		}
	}
	if err != nil {
		return fmt.Errorf("link %s: %w", dst, err)
	}
	return nil
}

// gc removes objects no version tree links to any more (link count 1:
// only the store's own name is left).
func (s store) gc() (removed int, err error) {
	err = filepath.WalkDir(s.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if nlink(info) <= 1 {
			removed++
			return os.Remove(p)
		}
		return nil
	})
	if err != nil {
		return removed, fmt.Errorf("store gc: %w", err)
	}
	return removed, nil
}
