package repo

import (
	"bytes"
	"fmt"
	"sync"

	"github.com/klauspost/compress/gzip"
)

// gzipWriters keeps compressors between chunks: a full index gzips over a
// hundred small chunks, and allocating and clearing a fresh compressor's
// tables for each cost more than compressing the chunk.
var gzipWriters = sync.Pool{New: func() any {
	// NewWriterLevel fails only for an invalid level.
	w, _ := gzip.NewWriterLevel(nil, gzip.DefaultCompression)
	return w
}}

func gzipBytes(data []byte) ([]byte, error) {
	var b bytes.Buffer
	w := gzipWriters.Get().(*gzip.Writer)
	defer gzipWriters.Put(w)
	w.Reset(&b)
	if _, err := w.Write(data); err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	return b.Bytes(), nil
}
