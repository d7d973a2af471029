// Package protocol holds the messages master and worker exchange over NATS,
// the subjects they use and the permissions a worker's NATS user gets.
// Every message carries V, the protocol version of its sender, so a newer
// master can tell an older worker apart and refuse or adapt.
package protocol

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// Version is the protocol version this binary speaks. The master accepts
// only workers of exactly its version (see master/dispatch), which is what
// makes a new field that changes what a worker must do safe to add: a
// worker that would ignore it is never given a job.
//
// History: 2 added Step.When; a version 1 worker would run a step whose
// condition does not hold, so it must not be accepted by a master that
// sends conditions. 3 added Job.Published and Job.ExactVersions; a version
// 2 worker would publish a rebuild under the version it already has.
const Version = 3

// Names of the JetStream stream holding build logs and the object store
// bucket holding artifacts (keyed by sha256 hex).
const (
	LogStream      = "KILN_LOGS"
	ArtifactBucket = "kiln-artifacts"
)

// Subjects. Everything a worker sends is under its own name, so per-worker
// NATS permissions keep one worker from reading or answering another's jobs.
func HelloSubject(worker string) string     { return "kiln.worker." + worker + ".hello" }
func HeartbeatSubject(worker string) string { return "kiln.worker." + worker + ".heartbeat" }
func EventSubject(worker string) string     { return "kiln.worker." + worker + ".event" }
func ResultSubject(worker string) string    { return "kiln.worker." + worker + ".result" }
func JobSubject(worker string) string       { return "kiln.job." + worker }
func CancelSubject(worker string) string    { return "kiln.cancel." + worker }
func LogSubject(worker, build string) string {
	return "kiln.log." + worker + "." + build
}
func InboxPrefix(worker string) string { return "_INBOX_" + worker }

// Wildcards the master subscribes to.
const (
	AllWorkerSubjects = "kiln.worker.*.*"
	AllLogSubjects    = "kiln.log.>"
)

// WorkerPermissions are the subjects a worker's NATS user may publish to and
// subscribe to. Replies to the master's requests are allowed separately
// (the server's allow_responses).
func WorkerPermissions(worker string) (publish, subscribe []string) {
	obj := "OBJ_" + ArtifactBucket
	publish = []string{
		"kiln.worker." + worker + ".>",
		"kiln.log." + worker + ".>",
		"$O." + ArtifactBucket + ".>",
		"$JS.API.INFO",
		"$JS.API.STREAM.INFO." + obj,
		"$JS.API.STREAM.INFO." + LogStream,
		"$JS.API.STREAM.MSG.GET." + obj,
		"$JS.API.DIRECT.GET." + obj + ".>",
	}
	subscribe = []string{
		JobSubject(worker),
		CancelSubject(worker),
		InboxPrefix(worker) + ".>",
	}
	return publish, subscribe
}

// Build statuses. Attempts, steps and Results use the same words.
const (
	StatusPending    = "pending"
	StatusRunning    = "running"
	StatusSuccess    = "success"
	StatusFailure    = "failure"
	StatusException  = "exception"
	StatusCancelled  = "cancelled"
	StatusLost       = "lost"
	StatusSuperseded = "superseded"
	StatusSkipped    = "skipped"
)

// Statuses lists every build status: the two a build passes through, then
// the final ones. It is the one list of them: code that validates, filters or
// shows statuses ranges over it, and the tests of its users (master/state,
// master/web) check they handle every entry, so a status added here alone
// fails a test.
var Statuses = []string{
	StatusPending, StatusRunning,
	StatusSuccess, StatusFailure, StatusException, StatusCancelled,
	StatusLost, StatusSuperseded, StatusSkipped,
}

// FinalStatuses are the statuses a build never leaves: all but pending and
// running. Derived rather than listed, so a new status cannot be missing here.
var FinalStatuses = slices.DeleteFunc(slices.Clone(Statuses), func(s string) bool {
	return s == StatusPending || s == StatusRunning
})

// Terminal reports whether status is one of FinalStatuses. An unknown status
// is not final: taking an ended build for a changing one costs a re-read or
// a copy, the opposite mistake treats a changing build as done.
func Terminal(status string) bool { return slices.Contains(FinalStatuses, status) }

// ResultStatuses are the statuses a worker may end an attempt with in a
// Result. Lost is the worker giving the build back because it is stopping
// mid-build: the attempt failed, not the build, so the master should retry it
// elsewhere instead of recording it as the build's end.
var ResultStatuses = []string{StatusSuccess, StatusFailure, StatusException, StatusCancelled, StatusLost}

// Hello is a worker's first message after (re)connecting: request, answered
// with HelloReply.
type Hello struct {
	V           int      `json:"v"`
	Worker      string   `json:"worker"`
	KilnVersion string   `json:"kiln_version"`
	Tags        []string `json:"tags"`
	Slots       int      `json:"slots"`
	Running     []string `json:"running"` // builds the worker is running now
	// Instance is random per worker process, so the master can tell a
	// reconnect from a second process started under the same name. Empty
	// from workers that predate it.
	Instance string `json:"instance"`
}

// HelloReply accepts or refuses a worker.
type HelloReply struct {
	V                 int           `json:"v"`
	OK                bool          `json:"ok"`
	Error             string        `json:"error,omitempty"`
	HeartbeatInterval time.Duration `json:"heartbeat_interval"`
	Cancel            []string      `json:"cancel,omitempty"` // running builds the master gave away
	// Duplicate says another process holds the worker's name: retrying
	// cannot help, so the worker stops.
	Duplicate bool `json:"duplicate,omitempty"`
}

// Heartbeat is published by a worker every HeartbeatInterval.
type Heartbeat struct {
	V        int       `json:"v"`
	Worker   string    `json:"worker"`
	Running  []string  `json:"running"`
	Free     int       `json:"free"`
	Draining bool      `json:"draining"`
	Time     time.Time `json:"time"`
	Instance string    `json:"instance"` // as in Hello
}

// StepTypes are the values Step.Type may take, sorted. builders refuses a
// config naming any other, and the steps package's registry implements
// exactly these (a test there checks), so a config that passes
// `kiln checkconfig` never fails on a worker of the same version for want of
// a step.
var StepTypes = []string{"checkout", "dpkg", "lintian", "mock", "nfpm", "pbuilder", "rpmbuild", "rpmlint", "sbuild", "shell", "source", "upload"}

// Step is one resolved step of a job.
type Step struct {
	Name         string            `json:"name"`
	Type         string            `json:"type"`
	Command      []string          `json:"command,omitempty"`
	Script       string            `json:"script,omitempty"`
	Env          map[string]string `json:"env,omitempty"`
	Workdir      string            `json:"workdir,omitempty"`
	Timeout      time.Duration     `json:"timeout,omitempty"`
	SetProperty  map[string]string `json:"set_property,omitempty"`
	AllowFailure bool              `json:"allow_failure,omitempty"`
	With         map[string]string `json:"with,omitempty"`
	Artifacts    []string          `json:"artifacts,omitempty"`
	// When lists conditions that must all hold for the step to run (see
	// Condition); otherwise it is reported as skipped. Since Version 2.
	When []Condition `json:"when,omitempty"`
}

// Job asks a worker to run one attempt of a build. Request, answered with Ack
// (OK false when the worker has no free slot or is draining).
type Job struct {
	V          int               `json:"v"`
	Build      string            `json:"build"`
	Attempt    int               `json:"attempt"`
	Builder    string            `json:"builder"`
	Component  string            `json:"component"`
	Target     string            `json:"target"` // distro/version/arch
	Format     string            `json:"format"` // apt or yum
	Git        string            `json:"git"`
	Branch     string            `json:"branch,omitempty"`
	Revision   string            `json:"revision,omitempty"` // empty: branch head
	Steps      []Step            `json:"steps"`
	Properties map[string]string `json:"properties,omitempty"`
	// RepoURL is the target's dev channel as apt/yum clients reach it, so a
	// build can install what its dependencies published moments before.
	RepoURL string `json:"repo_url,omitempty"`
	// RepoKey is the armored public key that signs RepoURL.
	RepoKey string `json:"repo_key,omitempty"`
	// Published lists the versions, as the format's tools print them, of
	// the packages this job's builder has in the target's dev channel, so
	// that a build which would repeat one gives its packages a higher
	// version instead (a rebuild: Debian's +bN, rpm's Release .bN). Since
	// Version 3.
	Published []string `json:"published,omitempty"`
	// ExactVersions keeps the packaging's versions as they are: no rebuild
	// or snapshot suffix (the component's versions: exact). Since Version 3.
	ExactVersions bool `json:"exact_versions,omitempty"`
}

// StepEvent reports a step starting or ending. Request, answered with Ack.
type StepEvent struct {
	V          int               `json:"v"`
	Worker     string            `json:"worker"`
	Build      string            `json:"build"`
	Attempt    int               `json:"attempt"`
	Step       int               `json:"step"`
	Name       string            `json:"name"`
	Status     string            `json:"status"`
	Started    time.Time         `json:"started"`
	Ended      time.Time         `json:"ended,omitzero"`
	Summary    string            `json:"summary,omitempty"`
	Properties map[string]string `json:"properties,omitempty"`
}

// Artifact is a file a build produced, stored in ArtifactBucket under SHA256.
type Artifact struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Result ends an attempt. The worker repeats it until the master acks.
type Result struct {
	V          int               `json:"v"`
	Worker     string            `json:"worker"`
	Build      string            `json:"build"`
	Attempt    int               `json:"attempt"`
	Status     string            `json:"status"`
	Summary    string            `json:"summary,omitempty"`
	Properties map[string]string `json:"properties,omitempty"`
	Artifacts  []Artifact        `json:"artifacts,omitempty"`
	Started    time.Time         `json:"started"`
	Ended      time.Time         `json:"ended"`
}

// Ack answers a request. Cancel tells the worker to stop the build it spoke
// about (the master gave it away or it was cancelled).
type Ack struct {
	V      int    `json:"v"`
	OK     bool   `json:"ok"`
	Error  string `json:"error,omitempty"`
	Cancel bool   `json:"cancel,omitempty"`
}

// Cancel tells a worker to stop a build.
type Cancel struct {
	V      int    `json:"v"`
	Build  string `json:"build"`
	Reason string `json:"reason"`
}

// LogChunk is one message of a build's log stream: consecutive lines of one step.
type LogChunk struct {
	Build   string    `json:"build"`
	Attempt int       `json:"attempt"`
	Step    int       `json:"step"`
	Lines   []string  `json:"lines"`
	Time    time.Time `json:"time"`
}

// Encode marshals a message, stamping nothing: callers set V.
func Encode(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		// Every message type here is plain data; failing to marshal one is a
		// programming error, not bad input.
		panic(fmt.Sprintf("protocol: encode %T: %v", v, err))
	}
	return b
}

// Decode unmarshals a message; the receiver judges its V.
func Decode(data []byte, v any) error {
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("decode %T: %w", v, err)
	}
	return nil
}
