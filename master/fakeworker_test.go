package master_test

import (
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/kiln-build/kiln/protocol"
)

// fakeWorker speaks the protocol by hand, so master tests do not depend on
// the worker package and can misbehave on purpose.
type fakeWorker struct {
	t     *testing.T
	name  string
	tags  []string
	slots int
	nc    *nats.Conn
	// hold, when set, keeps jobs running until it is closed.
	hold chan struct{}

	mu      sync.Mutex
	jobs    []protocol.Job
	running map[string]bool
	results []protocol.Result

	stop chan struct{}
	wg   sync.WaitGroup
}

func dialWorker(t *testing.T, url, name, password string) (*nats.Conn, error) {
	return nats.Connect(url, nats.UserInfo(name, password), nats.CustomInboxPrefix(protocol.InboxPrefix(name)), nats.MaxReconnects(0))
}

// startFakeWorker connects to the NATS server at url as worker name, with
// the password the farm configs give it, and says hello.
func startFakeWorker(t *testing.T, url, name string, tags []string, slots int) *fakeWorker {
	t.Helper()
	nc, err := dialWorker(t, url, name, "secret-"+name)
	if err != nil {
		t.Fatalf("worker %s connect: %v", name, err)
	}
	w := &fakeWorker{t: t, name: name, tags: tags, slots: slots, nc: nc, running: map[string]bool{}, stop: make(chan struct{})}
	if _, err := nc.Subscribe(protocol.JobSubject(name), w.onJob); err != nil {
		t.Fatal(err)
	}
	// The server must hold the subscription before the master, told by the
	// hello, sends a job: a round trip proves it, as the real worker does.
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	w.hello()
	w.wg.Add(1)
	go w.heartbeats()
	t.Cleanup(w.kill)
	return w
}

func (w *fakeWorker) hello() protocol.HelloReply {
	w.t.Helper()
	msg, err := w.nc.Request(protocol.HelloSubject(w.name), protocol.Encode(protocol.Hello{V: protocol.Version, Worker: w.name, Tags: w.tags, Slots: w.slots, Running: w.runningIDs()}), 5*time.Second)
	if err != nil {
		w.t.Fatalf("hello %s: %v", w.name, err)
	}
	var r protocol.HelloReply
	if err := protocol.Decode(msg.Data, &r); err != nil || !r.OK {
		w.t.Fatalf("hello %s refused: %v %s", w.name, err, r.Error)
	}
	return r
}

func (w *fakeWorker) runningIDs() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var ids []string
	for id := range w.running {
		ids = append(ids, id)
	}
	return ids
}

func (w *fakeWorker) heartbeats() {
	defer w.wg.Done()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-tick.C:
			_ = w.nc.Publish(protocol.HeartbeatSubject(w.name), protocol.Encode(protocol.Heartbeat{V: protocol.Version, Worker: w.name, Running: w.runningIDs(), Time: time.Now()}))
		}
	}
}

func (w *fakeWorker) onJob(msg *nats.Msg) {
	var job protocol.Job
	if err := protocol.Decode(msg.Data, &job); err != nil {
		w.t.Errorf("worker %s: bad job: %v", w.name, err)
		return
	}
	w.mu.Lock()
	w.jobs = append(w.jobs, job)
	w.running[job.Build] = true
	w.mu.Unlock()
	_ = msg.Respond(protocol.Encode(protocol.Ack{V: protocol.Version, OK: true}))
	w.wg.Add(1)
	go w.run(job)
}

func (w *fakeWorker) run(job protocol.Job) {
	defer w.wg.Done()
	started := time.Now()
	ev := protocol.StepEvent{V: protocol.Version, Worker: w.name, Build: job.Build, Attempt: job.Attempt, Step: 0, Name: "build", Status: protocol.StatusRunning, Started: started}
	if _, ok := w.request(protocol.EventSubject(w.name), ev); !ok {
		return
	}
	_ = w.nc.Publish(protocol.LogSubject(w.name, job.Build), protocol.Encode(protocol.LogChunk{Build: job.Build, Attempt: job.Attempt, Lines: []string{"hello from " + w.name, "building " + job.Builder}, Time: time.Now()}))
	if w.hold != nil {
		select {
		case <-w.hold:
		case <-w.stop:
			return
		}
	}
	ev.Status, ev.Ended = protocol.StatusSuccess, time.Now()
	if _, ok := w.request(protocol.EventSubject(w.name), ev); !ok {
		return
	}
	res := protocol.Result{V: protocol.Version, Worker: w.name, Build: job.Build, Attempt: job.Attempt, Status: protocol.StatusSuccess, Started: started, Ended: time.Now()}
	w.report(res)
}

// report sends a result until the master acks it.
func (w *fakeWorker) report(res protocol.Result) protocol.Ack {
	for {
		ack, ok := w.request(protocol.ResultSubject(w.name), res)
		if ok {
			w.mu.Lock()
			w.results = append(w.results, res)
			delete(w.running, res.Build)
			w.mu.Unlock()
			return ack
		}
		select {
		case <-w.stop:
			return protocol.Ack{}
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (w *fakeWorker) request(subject string, v any) (protocol.Ack, bool) {
	msg, err := w.nc.Request(subject, protocol.Encode(v), 2*time.Second)
	if err != nil {
		return protocol.Ack{}, false
	}
	var ack protocol.Ack
	if err := protocol.Decode(msg.Data, &ack); err != nil {
		return protocol.Ack{}, false
	}
	return ack, true
}

// kill drops the worker without a word, as a crashed host would.
func (w *fakeWorker) kill() {
	select {
	case <-w.stop:
		return
	default:
	}
	close(w.stop)
	w.nc.Close()
	w.wg.Wait()
}
