package view

import (
	"sync"

	"github.com/kiln-build/kiln/master/api"
	"github.com/kiln-build/kiln/master/state"
)

// finishedCap bounds the cache: about 1 kB a build, so some 20 MB.
const finishedCap = 20_000

// finishedBuilds keeps the API form of ended builds. The state never
// changes a build once it has ended (TestFinishedBuildsNeverChange), and
// converting every build of every page — a list of 100 with 50 clients —
// kept the collector busy enough to triple the API's tail latency. The
// builds it hands out are shared: callers read them, never change them.
type finishedBuilds struct {
	mu sync.RWMutex
	m  map[int64]*api.Build
}

// of returns b in the API's form, from the cache when b has ended.
func (c *finishedBuilds) of(b *state.Build) *api.Build {
	if !state.Terminal(b.Status) {
		return apiBuild(b)
	}
	c.mu.RLock()
	ab, ok := c.m[b.ID]
	c.mu.RUnlock()
	if ok {
		return ab
	}
	ab = apiBuild(b)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[int64]*api.Build)
	}
	if len(c.m) >= finishedCap {
		// Any victim will do: lists are read newest first, and a miss
		// costs one conversion.
		for id := range c.m {
			delete(c.m, id)
			break
		}
	}
	c.m[b.ID] = ab
	return ab
}
