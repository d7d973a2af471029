package state

import (
	"time"

	"github.com/kiln-build/kiln/protocol"
)

// EntryVersion is the format version of a raft log entry. A master refuses
// to apply entries newer than it understands rather than guess.
const EntryVersion = 1

// entry is one raft log entry: a batch of commands applied in order.
type entry struct {
	V    int       `json:"v"`
	Cmds []Command `json:"cmds"`
}

// Command is one state mutation. Exactly one field is set. Times are chosen
// by the leader before the command is logged, so replay is deterministic.
type Command struct {
	Force    *ForceCmd    `json:"force,omitempty"`
	Assign   *AssignCmd   `json:"assign,omitempty"`
	Unassign *UnassignCmd `json:"unassign,omitempty"`
	Step     *StepCmd     `json:"step,omitempty"`
	Finish   *FinishCmd   `json:"finish,omitempty"`
	Cancel   *CancelCmd   `json:"cancel,omitempty"`
	Skip     *SkipCmd     `json:"skip,omitempty"`
	Lost     *LostCmd     `json:"lost,omitempty"`
	Worker   *WorkerCmd   `json:"worker,omitempty"`
	Publish  *PublishCmd  `json:"publish,omitempty"`
}

// NewBuild describes one build request a ForceCmd creates.
type NewBuild struct {
	Builder   string   `json:"builder"`
	Component string   `json:"component"`
	Target    string   `json:"target"`
	Deps      []string `json:"deps,omitempty"`
	Tags      []string `json:"tags,omitempty"`
	Priority  int      `json:"priority,omitempty"`
	Collapse  bool     `json:"collapse,omitempty"`
}

// ForceCmd records a change and its buildset.
type ForceCmd struct {
	Component string     `json:"component"`
	Target    string     `json:"target,omitempty"`
	Revision  string     `json:"revision,omitempty"`
	Ref       string     `json:"ref,omitempty"`
	Source    *Source    `json:"source,omitempty"`
	Reason    string     `json:"reason"`
	Time      time.Time  `json:"time"`
	Builds    []NewBuild `json:"builds"`
}

// AssignCmd dispatches a pending build to a worker as a new attempt.
type AssignCmd struct {
	Build  int64     `json:"build"`
	Worker string    `json:"worker"`
	Time   time.Time `json:"time"`
}

// UnassignCmd returns an attempt the worker refused or never received to the
// queue; it does not count against the build's attempts.
type UnassignCmd struct {
	Build   int64     `json:"build"`
	Attempt int       `json:"attempt"`
	Reason  string    `json:"reason"`
	Time    time.Time `json:"time"`
}

// StepCmd records a worker's step event.
type StepCmd struct {
	Event protocol.StepEvent `json:"event"`
}

// FinishCmd records a worker's result.
type FinishCmd struct {
	Result protocol.Result `json:"result"`
	Time   time.Time       `json:"time"`
}

// CancelCmd cancels a pending or running build.
type CancelCmd struct {
	Build  int64     `json:"build"`
	Reason string    `json:"reason"`
	Time   time.Time `json:"time"`
}

// SkipCmd ends a pending build whose dependency failed.
type SkipCmd struct {
	Build  int64     `json:"build"`
	Reason string    `json:"reason"`
	Time   time.Time `json:"time"`
}

// LostCmd records that a running attempt's worker vanished. The build goes
// back to the queue, or ends as exception after MaxAttempts lost attempts.
type LostCmd struct {
	Build int64 `json:"build"`
	// Worker, when set, must be the one running the attempt: a worker may
	// give up only its own build. (The leader's own verdict on a silent
	// worker leaves it empty.)
	Worker      string    `json:"worker,omitempty"`
	Attempt     int       `json:"attempt"`
	Reason      string    `json:"reason"`
	MaxAttempts int       `json:"max_attempts"`
	Time        time.Time `json:"time"`
}

// WorkerCmd records a worker's hello.
type WorkerCmd struct {
	Record WorkerRecord `json:"record"`
}

// Outcome is what applying one command did.
type Outcome struct {
	// Err is set when the command was refused (ErrNotFound, ErrFinished, ...).
	Err error
	// Stale: the message spoke about an attempt that is no longer current.
	Stale bool
	// Duplicate: the message repeats one already applied. For a ForceCmd,
	// Change and Buildset name the change it repeats and nothing is created.
	Duplicate bool
	// Change, Buildset and Builds are the ids a ForceCmd created.
	Change   int64
	Buildset int64
	Builds   []int64
	// Worker and Attempt name who ran the build a command affected.
	Worker  string
	Attempt int
	// Finished lists the builds the command ended, for the event feed (a
	// replayed log reports nothing).
	Finished []Ended
	// Dispatched: the command started build Build's attempt, DispatchWait
	// after the request became ready.
	Dispatched   bool
	Build        int64
	DispatchWait time.Duration
}

// Ended is a build a command ended, and how.
type Ended struct {
	Build  int64
	Status string
}
