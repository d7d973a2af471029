package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"

	"github.com/kiln-build/kiln/protocol"
)

// finishedJSONCap bounds the cache: about 1.3 kB a build, so some 25 MB.
const finishedJSONCap = 20_000

// finishedJSON caches the encoded form of finished builds. The state never
// changes a build once it has ended, and encoding dominates the cost of a
// build list (a page of 100 is some 130 kB of JSON), so pages of history are
// served mostly by copying.
type finishedJSON struct {
	mu sync.RWMutex
	m  map[int64][]byte
}

// encode returns b as indented JSON, nested as a member of BuildList.Builds.
func (c *finishedJSON) encode(b *Build) ([]byte, error) {
	if !protocol.Terminal(b.Status) {
		return json.MarshalIndent(b, "    ", "  ")
	}
	c.mu.RLock()
	data, ok := c.m[b.ID]
	c.mu.RUnlock()
	if ok {
		return data, nil
	}
	data, err := json.MarshalIndent(b, "    ", "  ")
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[int64][]byte)
	}
	if len(c.m) >= finishedJSONCap {
		// Any victim will do: pages are read newest first, and a miss
		// costs one encode.
		for id := range c.m {
			delete(c.m, id)
			break
		}
	}
	c.m[b.ID] = data
	return data, nil
}

// listBufs recycles the buffers build lists are assembled in: a page is a
// few hundred kB, and fresh ones per request kept the collector busy.
var listBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// writeBuildList writes what writeJSON would for BuildList{list, total},
// byte for byte, from the cache.
func (c *finishedJSON) writeBuildList(w http.ResponseWriter, list []*Build, total int) error {
	buf := listBufs.Get().(*bytes.Buffer)
	defer listBufs.Put(buf)
	buf.Reset()
	buf.WriteString("{\n  \"builds\": [")
	for i, b := range list {
		data, err := c.encode(b)
		if err != nil {
			return err
		}
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.WriteString("\n    ")
		buf.Write(data)
	}
	if len(list) > 0 {
		buf.WriteString("\n  ")
	}
	buf.WriteString("],\n  \"total\": ")
	buf.WriteString(strconv.Itoa(total))
	buf.WriteString("\n}\n")
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(http.StatusOK)
	_, err := w.Write(buf.Bytes())
	return err
}
