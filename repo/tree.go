package repo

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"sync"
)

// tree is the list of files of a version being built: path → object sum.
// Nothing is linked until the whole list is known.
type tree struct {
	mu    sync.Mutex
	st    store
	files map[string]string
	// carried are files linked from the previous version as they are
	// (older by-hash indexes a client may still be fetching).
	carried map[string]string
	// symlinks point a version's pool directories at the channel's shared pool.
	symlinks map[string]string
}

func newTree(st store) *tree {
	return &tree{st: st, files: map[string]string{}, carried: map[string]string{}, symlinks: map[string]string{}}
}

// add records an existing object under path; the same path twice with
// different content is a caller bug surfaced as an error.
func (t *tree) add(p, sum string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if old, ok := t.files[p]; ok && old != sum {
		return fmt.Errorf("%w: two different files for %s", ErrInvalid, p)
	}
	t.files[p] = sum
	return nil
}

// addBytes stores data and records it under path, returning its sha256.
func (t *tree) addBytes(p string, data []byte) (string, error) {
	sum, err := t.st.putBytes(data)
	if err != nil {
		return "", err
	}
	return sum, t.add(p, sum)
}

func (t *tree) symlink(p, target string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.symlinks[p] = target
}

func (t *tree) carry(p, from string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.carried[p] = from
}

func (t *tree) paths() []string {
	ps := make([]string, 0, len(t.files))
	for p := range t.files {
		ps = append(ps, p)
	}
	sort.Strings(ps)
	return ps
}

func sumHex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
