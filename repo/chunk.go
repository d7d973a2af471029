package repo

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"hash/fnv"
	"io"
	"runtime"
	"sync"
)

// chunkEvery is the average number of packages per chunk. Boundaries depend
// only on package names (content-defined), so adding or removing a package
// changes one chunk and every other chunk is reused from the cache.
const chunkEvery = 64

// chunkOut is one rendered chunk of an index, in every form a file needs.
type chunkOut struct {
	plain []byte
	gz    []byte  // one gzip member
	xz    xzBlock // one xz block; empty unless asked for
}

// chunkSpec describes an index made of per-package fragments.
type chunkSpec struct {
	kind   string // keeps caches of different indexes apart
	n      int
	name   func(i int) string // package name, for boundaries
	id     func(i int) string // everything that determines fragment i
	render func(b *bytes.Buffer, i int)
	xz     bool
}

// rendered is a whole index assembled from chunks.
type rendered struct {
	parts [][]byte // uncompressed, in order; header and footer included
	gz    []byte
	xz    []byte
	size  int64
	sum   string   // sha256 of the uncompressed index
	keys  []string // cache keys of the chunks used
}

func (r *rendered) plain() []byte { return bytes.Join(r.parts, nil) }

func boundary(name string) bool {
	h := fnv.New32a()
	io.WriteString(h, name)
	return h.Sum32()%chunkEvery == 0
}

// renderChunked renders spec between header and footer, reusing cached
// chunks. gzip members may be concatenated (zlib, apt and libsolv read them
// all); xz uses one stream of independent blocks.
func (b *build) renderChunked(spec chunkSpec, header, footer []byte) (*rendered, error) {
	var chunks [][2]int
	start := 0
	for i := 1; i < spec.n; i++ {
		if spec.name(i) != spec.name(i-1) && boundary(spec.name(i)) {
			chunks = append(chunks, [2]int{start, i})
			start = i
		}
	}
	if spec.n > 0 {
		chunks = append(chunks, [2]int{start, spec.n})
	}
	out := &rendered{}
	var gz bytes.Buffer
	var blocks []xzBlock
	h := sha256.New()
	emit := func(c *chunkOut) {
		out.parts = append(out.parts, c.plain)
		h.Write(c.plain)
		out.size += int64(len(c.plain))
		gz.Write(c.gz)
		if spec.xz && c.xz.uncompressed > 0 {
			blocks = append(blocks, c.xz)
		}
	}
	for _, edge := range [][]byte{header} {
		if len(edge) > 0 {
			c, err := compressChunk(edge, spec.xz)
			if err != nil {
				return nil, err
			}
			emit(c)
		}
	}
	// Render the missing chunks, compress them in parallel, then splice
	// cached and fresh chunks in order.
	outs := make([]*chunkOut, len(chunks))
	var missing []int
	plains := make([][]byte, len(chunks))
	keys := make([]string, len(chunks))
	for n, c := range chunks {
		ids := make([]string, 0, c[1]-c[0]+1)
		ids = append(ids, spec.kind)
		for i := c[0]; i < c[1]; i++ {
			ids = append(ids, spec.id(i))
		}
		keys[n] = fingerprint(ids...)
		if outs[n] = b.cache.chunk(keys[n]); outs[n] != nil {
			continue
		}
		var buf bytes.Buffer
		for i := c[0]; i < c[1]; i++ {
			spec.render(&buf, i)
		}
		plains[n] = buf.Bytes()
		missing = append(missing, n)
	}
	if err := parallel(len(missing), func(m int) error {
		n := missing[m]
		c, err := compressChunk(plains[n], spec.xz)
		outs[n] = c
		return err
	}); err != nil {
		return nil, err
	}
	for n, c := range outs {
		if plains[n] != nil {
			b.cache.putChunk(keys[n], c)
		}
		out.keys = append(out.keys, keys[n])
		emit(c)
	}
	if len(footer) > 0 {
		c, err := compressChunk(footer, spec.xz)
		if err != nil {
			return nil, err
		}
		emit(c)
	}
	if gz.Len() == 0 {
		// An empty index still needs a valid gzip file.
		empty, err := gzipBytes(nil)
		if err != nil {
			return nil, err
		}
		gz.Write(empty)
	}
	out.gz = gz.Bytes()
	if spec.xz {
		out.xz = xzStream(blocks)
	}
	out.sum = hexSum(h)
	return out, nil
}

// parallel runs f(0..n-1) on up to GOMAXPROCS goroutines.
func parallel(n int, f func(int) error) error {
	errs := make([]error, n)
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(n, runtime.GOMAXPROCS(0)) {
		wg.Go(func() {
			for i := range next {
				errs[i] = f(i)
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return errors.Join(errs...)
}

func compressChunk(plain []byte, withXZ bool) (*chunkOut, error) {
	c := &chunkOut{plain: append([]byte(nil), plain...)}
	var err error
	if c.gz, err = gzipBytes(plain); err != nil {
		return nil, err
	}
	if withXZ && len(plain) > 0 {
		if c.xz, err = newXZBlock(plain); err != nil {
			return nil, err
		}
	}
	return c, nil
}
