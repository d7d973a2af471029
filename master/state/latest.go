package state

import (
	"time"

	"github.com/kiln-build/kiln/protocol"
)

// BuildRef is a build's id and status: what a grid cell shows.
type BuildRef struct {
	ID     int64  `json:"id"`
	Status string `json:"status"`
}

// Latest returns the newest build of each named builder, parallel to names;
// a builder that never built gets the zero BuildRef. It reads the index the
// FSM keeps, so its cost depends on len(names), not on the history.
func (f *FSM) Latest(names []string) []BuildRef {
	out := make([]BuildRef, len(names))
	f.mu.RLock()
	defer f.mu.RUnlock()
	for i, n := range names {
		if id, ok := f.latest[n]; ok {
			out[i] = BuildRef{ID: id, Status: f.builds[id].Status}
		}
	}
	return out
}

// QueueLength is how many build requests wait for dependencies or a worker.
func (f *FSM) QueueLength() int {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return len(f.pending)
}

// readyAt is when a build's current attempt could first have been dispatched:
// its creation, the end of the last dependency in its buildset, or the end of
// its previous attempt (a lost or refused one puts it back in the queue).
func (f *FSM) readyAt(b *Build) time.Time {
	t := b.Created
	for _, dep := range b.Deps {
		id, ok := f.inBuildset[b.Buildset][dep]
		if !ok {
			continue
		}
		d := f.builds[id]
		for d.Status == protocol.StatusSuperseded && d.SupersededBy != 0 {
			d = f.builds[d.SupersededBy]
		}
		if d.Ended.After(t) {
			t = d.Ended
		}
	}
	if n := len(b.Attempts); n > 1 && b.Attempts[n-2].Ended.After(t) {
		t = b.Attempts[n-2].Ended
	}
	return t
}
