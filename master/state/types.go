// Package state is the master's authoritative record of the farm: changes,
// buildsets, builds (a build request and the build it becomes share one
// record and one id), their attempts, steps and artifacts, and the workers
// seen. It is a hashicorp/raft FSM, so every mutation is a logged command and
// every master replaying the log reaches the same state.
package state

import (
	"errors"
	"slices"
	"time"

	"github.com/kiln-build/kiln/protocol"
)

// Sentinel errors callers branch on.
var (
	ErrNotFound  = errors.New("not found")
	ErrFinished  = errors.New("build already finished")
	ErrNotLeader = errors.New("not the raft leader")
)

// Change is a new revision of a component: pushed, polled or forced.
type Change struct {
	ID        int64     `json:"id"`
	Component string    `json:"component"`
	Target    string    `json:"target,omitempty"` // set when the change was forced for one target
	Revision  string    `json:"revision,omitempty"`
	Ref       string    `json:"ref,omitempty"` // refs/heads/B or refs/tags/T, when the source named one
	Source    *Source   `json:"source,omitempty"`
	Reason    string    `json:"reason"`
	Created   time.Time `json:"created"`
	Buildset  int64     `json:"buildset"`
}

// Buildset is every build one change causes.
type Buildset struct {
	ID      int64     `json:"id"`
	Change  int64     `json:"change"`
	Builds  []int64   `json:"builds"`
	Created time.Time `json:"created"`
}

// Build is a build request and, once dispatched, the build it became.
type Build struct {
	ID        int64    `json:"id"`
	Buildset  int64    `json:"buildset"`
	Change    int64    `json:"change"`
	Builder   string   `json:"builder"`
	Component string   `json:"component"`
	Target    string   `json:"target"`
	Revision  string   `json:"revision,omitempty"`
	Deps      []string `json:"deps,omitempty"` // dependency builders on the same target
	Tags      []string `json:"tags,omitempty"` // worker tags required
	Priority  int      `json:"priority,omitempty"`
	Collapse  bool     `json:"collapse,omitempty"`

	Status       string `json:"status"`
	Summary      string `json:"summary,omitempty"` // why it was skipped, cancelled, or how it ended
	SupersededBy int64  `json:"superseded_by,omitempty"`

	Created time.Time `json:"created"`
	Started time.Time `json:"started,omitzero"`
	Ended   time.Time `json:"ended,omitzero"`

	Worker     string              `json:"worker,omitempty"`
	Attempt    int                 `json:"attempt"` // current attempt number, 0 before the first dispatch
	Attempts   []Attempt           `json:"attempts,omitempty"`
	Steps      []Step              `json:"steps,omitempty"` // of the current attempt
	Properties map[string]string   `json:"properties,omitempty"`
	Artifacts  []protocol.Artifact `json:"artifacts,omitempty"`
}

// Attempt is one dispatch of a build to a worker.
type Attempt struct {
	N        int       `json:"n"`
	Worker   string    `json:"worker"`
	Assigned time.Time `json:"assigned"`
	Started  time.Time `json:"started,omitzero"`
	Ended    time.Time `json:"ended,omitzero"`
	Status   string    `json:"status"`
	Reason   string    `json:"reason,omitempty"`
}

// Step is one step of a build's current attempt.
type Step struct {
	Index   int       `json:"index"`
	Name    string    `json:"name"`
	Status  string    `json:"status"`
	Summary string    `json:"summary,omitempty"`
	Started time.Time `json:"started,omitzero"`
	Ended   time.Time `json:"ended,omitzero"`
}

// WorkerRecord is what the farm remembers of a worker across restarts.
// Liveness (last heartbeat) is not here: it is the leader's observation, not
// replicated fact.
type WorkerRecord struct {
	Name        string    `json:"name"`
	Tags        []string  `json:"tags"`
	Slots       int       `json:"slots"`
	KilnVersion string    `json:"kiln_version,omitempty"`
	Protocol    int       `json:"protocol"`
	LastHello   time.Time `json:"last_hello"`
}

// Terminal reports whether a build status is final. It is protocol.Terminal,
// so the state, its readers and the pages give one answer.
func Terminal(status string) bool { return protocol.Terminal(status) }

// clone returns a deep enough copy for readers outside the FSM lock.
func (b *Build) clone() *Build {
	c := *b
	c.Deps = slices.Clone(b.Deps)
	c.Tags = slices.Clone(b.Tags)
	c.Attempts = slices.Clone(b.Attempts)
	c.Steps = slices.Clone(b.Steps)
	c.Artifacts = slices.Clone(b.Artifacts)
	if b.Properties != nil {
		c.Properties = make(map[string]string, len(b.Properties))
		for k, v := range b.Properties {
			c.Properties[k] = v
		}
	}
	return &c
}
