package repo

import (
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"sync"
)

// cachedFile is an index file produced by an earlier publish.
type cachedFile struct {
	path string // relative to the channel version root
	sum  string
	size int64
}

// indexCache remembers, per fingerprint of an index's inputs, the files it
// produced, so an unchanged target costs no rendering or compression.
// Entries are only trusted while their store objects exist.
type indexCache struct {
	mu         sync.Mutex
	m          map[string]cacheEntry
	used       map[string]bool
	chunks     map[string]*chunkOut
	usedChunks map[string]bool
}

func (c *indexCache) chunk(key string) *chunkOut {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.usedChunks[key] = true
	return c.chunks[key]
}

func (c *indexCache) putChunk(key string, out *chunkOut) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.chunks[key] = out
}

// cacheEntry is what one index set produced and the chunks it was made of
// (kept alive while the entry is used, for the next change of that target).
type cacheEntry struct {
	files  []cachedFile
	chunks []string
}

func (c *indexCache) get(st store, key string) ([]cachedFile, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.used[key] = true
	e, ok := c.m[key]
	if !ok {
		return nil, false
	}
	for _, f := range e.files {
		if !st.has(f.sum, f.size) {
			delete(c.m, key)
			return nil, false
		}
	}
	for _, k := range e.chunks {
		c.usedChunks[k] = true
	}
	return e.files, true
}

// put records an index set; the chunks used since begin are attributed to it.
func (c *indexCache) put(key string, files []cachedFile, chunks []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[key] = cacheEntry{files: files, chunks: chunks}
}

// begin starts a publish; end drops entries that publish did not use, so
// the cache holds one channel state per target at most.
func (c *indexCache) begin() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]cacheEntry{}
		c.chunks = map[string]*chunkOut{}
	}
	c.used = map[string]bool{}
	c.usedChunks = map[string]bool{}
}

func (c *indexCache) end() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.m {
		if !c.used[k] {
			delete(c.m, k)
		}
	}
	for k := range c.chunks {
		if !c.usedChunks[k] {
			delete(c.chunks, k)
		}
	}
}

// fingerprint hashes the parts that determine an index's content.
func fingerprint(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hexSum(h)
}

func hexSum(h hash.Hash) string { return hex.EncodeToString(h.Sum(nil)) }
