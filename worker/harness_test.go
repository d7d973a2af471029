package worker

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kiln-build/kiln/internal/kilntest"
	"github.com/kiln-build/kiln/protocol"
)

const masterPassword = "master-secret"

func token(worker string) string { return "token-of-" + worker }

// startServer runs a NATS server with a "master" user allowed everything
// and one user per worker holding exactly the permissions the master gives
// its workers.
func startServer(t testing.TB, workers ...string) *kilntest.NATSServer {
	t.Helper()
	perms := map[string]string{}
	for _, w := range workers {
		perms[w] = w
	}
	return startServerPerms(t, perms)
}

// startServerPerms gives each worker user (key) the permissions of the
// worker named by its value.
func startServerPerms(t testing.TB, perms map[string]string) *kilntest.NATSServer {
	t.Helper()
	users := []kilntest.NATSUser{{Name: "master", Password: masterPassword}}
	for w, as := range perms {
		pub, sub := protocol.WorkerPermissions(as)
		users = append(users, kilntest.NATSUser{Name: w, Password: token(w), Publish: pub, Subscribe: sub, Reply: true})
	}
	return kilntest.NATS(t, users...)
}

// testMaster is the master's side of the protocol, as small as a test
// needs: it creates the log stream and artifact bucket, answers hellos,
// records and acks events and results, and sends jobs.
type testMaster struct {
	t      testing.TB
	server *kilntest.NATSServer
	nc     *nats.Conn
	js     jetstream.JetStream
	obs    jetstream.ObjectStore

	mu         sync.Mutex
	hellos     []protocol.Hello
	heartbeats []protocol.Heartbeat
	events     []protocol.StepEvent
	results    []protocol.Result
	dropResult int  // results left unanswered before acking
	cancelOnEv bool // answer step events with Ack.Cancel
	helloReply protocol.HelloReply
}

func newTestMaster(t testing.TB, s *kilntest.NATSServer) *testMaster {
	t.Helper()
	nc := s.Connect("master", masterPassword, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: protocol.LogStream, Subjects: []string{protocol.AllLogSubjects}}); err != nil {
		t.Fatal(err)
	}
	obs, err := js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: protocol.ArtifactBucket})
	if err != nil {
		t.Fatal(err)
	}
	m := &testMaster{t: t, server: s, nc: nc, js: js, obs: obs,
		helloReply: protocol.HelloReply{V: protocol.Version, OK: true, HeartbeatInterval: 50 * time.Millisecond}}
	_, err = nc.Subscribe(protocol.AllWorkerSubjects, m.handle)
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return m
}

func (m *testMaster) handle(msg *nats.Msg) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ack := protocol.Ack{V: protocol.Version, OK: true}
	_, kind, _ := strings.Cut(strings.TrimPrefix(msg.Subject, "kiln.worker."), ".")
	switch kind {
	case "hello":
		var h protocol.Hello
		if protocol.Decode(msg.Data, &h) != nil {
			return
		}
		m.hellos = append(m.hellos, h)
		msg.Respond(protocol.Encode(m.helloReply))
		return
	case "heartbeat":
		var h protocol.Heartbeat
		if protocol.Decode(msg.Data, &h) == nil {
			m.heartbeats = append(m.heartbeats, h)
		}
		return
	case "event":
		var e protocol.StepEvent
		if protocol.Decode(msg.Data, &e) != nil {
			return
		}
		m.events = append(m.events, e)
		ack.Cancel = m.cancelOnEv
	case "result":
		var r protocol.Result
		if protocol.Decode(msg.Data, &r) != nil {
			return
		}
		m.results = append(m.results, r)
		if m.dropResult > 0 {
			m.dropResult--
			return
		}
	default:
		return
	}
	msg.Respond(protocol.Encode(ack))
}

// waitFor polls cond under the master's lock until it holds.
func (m *testMaster) waitFor(what string, timeout time.Duration, cond func() bool) {
	m.t.Helper()
	kilntest.WaitFor(m.t, timeout, what, func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		return cond()
	})
}

func (m *testMaster) result(build string, timeout time.Duration) protocol.Result {
	m.t.Helper()
	var r protocol.Result
	m.waitFor("result of "+build, timeout, func() bool {
		for _, x := range m.results {
			if x.Build == build {
				r = x
				return true
			}
		}
		return false
	})
	// Every test that reads a result also checks the worker stays within
	// the vocabulary the master is built to accept.
	if !slices.Contains(protocol.ResultStatuses, r.Status) {
		m.t.Errorf("result of %s has status %q, not one of protocol.ResultStatuses %v", build, r.Status, protocol.ResultStatuses)
	}
	return r
}

func (m *testMaster) sendJob(worker string, job any) protocol.Ack {
	m.t.Helper()
	data, ok := job.([]byte)
	if !ok {
		data = protocol.Encode(job)
	}
	reply, err := m.nc.Request(protocol.JobSubject(worker), data, 5*time.Second)
	if err != nil {
		m.t.Fatalf("send job: %v", err)
	}
	var ack protocol.Ack
	if err := protocol.Decode(reply.Data, &ack); err != nil {
		m.t.Fatal(err)
	}
	return ack
}

// logLines reads a build's whole log back from the stream, as a late viewer would.
func (m *testMaster) logLines(worker, build string) map[int][]string {
	m.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cons, err := m.js.OrderedConsumer(ctx, protocol.LogStream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{protocol.LogSubject(worker, build)}})
	if err != nil {
		m.t.Fatal(err)
	}
	out := map[int][]string{}
	for {
		batch, err := cons.FetchNoWait(100)
		if err != nil {
			m.t.Fatal(err)
		}
		n := 0
		for msg := range batch.Messages() {
			n++
			var c protocol.LogChunk
			if err := protocol.Decode(msg.Data(), &c); err != nil {
				m.t.Fatal(err)
			}
			out[c.Step] = append(out[c.Step], c.Lines...)
		}
		if n == 0 {
			return out
		}
	}
}

type runningWorker struct {
	w      *Worker
	cancel context.CancelFunc
	done   chan error
}

// startWorker runs a worker named name until the test ends.
func startWorker(t testing.TB, s *kilntest.NATSServer, cfg Config) *runningWorker {
	t.Helper()
	if cfg.NATSURL == "" {
		cfg.NATSURL = s.URL()
	}
	if cfg.Token == "" {
		cfg.Token = token(cfg.Name)
	}
	cfg.WorkDir = t.TempDir()
	cfg.Probe = Probe{OSRelease: "/nonexistent", Machine: func() (string, error) { return "x86_64", nil }}
	if cfg.Logger == nil {
		cfg.Logger = kilntest.Logger(t)
	}
	w, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rw := &runningWorker{w: w, cancel: cancel, done: make(chan error, 1)}
	go func() { rw.done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-rw.done:
		case <-time.After(15 * time.Second):
			t.Error("worker did not stop")
		}
	})
	return rw
}

func (rw *runningWorker) wait(t testing.TB, timeout time.Duration) error {
	t.Helper()
	select {
	case err := <-rw.done:
		rw.done <- err // for the cleanup
		return err
	case <-time.After(timeout):
		t.Fatal("Run did not return")
		return nil
	}
}
