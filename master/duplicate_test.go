package master_test

import (
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kiln-build/kiln/internal/kilntest"
	"github.com/kiln-build/kiln/internal/kilntest/farmtest"
	"github.com/kiln-build/kiln/master/api"
	"github.com/kiln-build/kiln/protocol"
	"github.com/kiln-build/kiln/worker"
)

// Two processes started under one name would both take the name's jobs:
// the second is refused while the first lives, and admitted once the first
// has been silent past the heartbeat timeout.
func TestSecondWorkerProcessUnderOneNameIsRefused(t *testing.T) {
	f := newE2EFarm(t, "0.3")
	f.runWorker("w1", 2, "deb-lane", "rpm-lane")
	f.waitConnected("w1")
	res := f.force("liba")
	kilntest.WaitFor(t, 10*time.Second, "a build running on w1", func() bool {
		return f.build(res.Builds[0]).Status == protocol.StatusRunning
	})

	if err := runError(t, f.runWorker("w1", 2, "deb-lane", "rpm-lane")); !strings.Contains(err.Error(), "already connected from another process") {
		t.Fatalf("second w1 refused with %q, want the reason", err)
	}

	for _, b := range f.waitFinished(60*time.Second, res.Builds...) {
		assertBuiltOnce(t, b, "w1")
	}
}

func TestNewWorkerProcessAdmittedAfterTheOldOneWentSilent(t *testing.T) {
	f := newE2EFarm(t, "0.1")
	first := f.runWorker("w1", 2, "deb-lane", "rpm-lane")
	f.waitConnected("w1")
	if err := first.Stop(); err != nil {
		t.Errorf("first w1: %v", err)
	}
	// The master has not yet noticed the first process left.
	runError(t, f.runWorker("w1", 2, "deb-lane", "rpm-lane"))
	kilntest.WaitFor(t, 10*time.Second, "w1 to be declared gone", func() bool {
		return !slices.ContainsFunc(f.api().Workers(), func(w api.Worker) bool { return w.Connected })
	})

	f.runWorker("w1", 2, "deb-lane", "rpm-lane")
	f.waitConnected("w1")
	for _, b := range f.waitFinished(60*time.Second, f.force("liba").Builds...) {
		assertBuiltOnce(t, b, "w1")
	}
}

// A reconnect of the same process (here: its TCP connections cut) is not a
// second process: the master keeps the build it runs.
func TestWorkerReconnectKeepsItsRunningBuild(t *testing.T) {
	f := newE2EFarm(t, "1.5")
	p := newBlipProxy(t, strings.TrimPrefix(f.NATSURL, "nats://"))
	w1 := farmtest.StartWorker(t, "nats://"+p.addr(), "w1", "secret-w1", farmtest.Slots(2), farmtest.Tags("deb-lane", "rpm-lane"))
	f.waitConnected("w1")
	res := f.force("liba")
	kilntest.WaitFor(t, 10*time.Second, "a build running on w1", func() bool {
		return f.build(res.Builds[0]).Status == protocol.StatusRunning
	})

	p.cut()
	kilntest.WaitFor(t, 10*time.Second, "w1 to reconnect", func() bool { return p.accepted() > 1 })
	for _, b := range f.waitFinished(60*time.Second, res.Builds...) {
		assertBuiltOnce(t, b, "w1")
	}
	select {
	case <-w1.Done():
		t.Fatalf("w1 ended after reconnecting: %v", w1.Err())
	default:
	}
}

// runError waits for a worker process refused as a duplicate to end.
func runError(t *testing.T, w *farmtest.Worker) error {
	t.Helper()
	select {
	case <-w.Done():
		err := w.Err()
		if !errors.Is(err, worker.ErrDuplicate) {
			t.Fatalf("worker ended with %v, want %v", err, worker.ErrDuplicate)
		}
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("worker under a connected worker's name still runs")
		return nil
	}
}

func assertBuiltOnce(t *testing.T, b *api.Build, worker string) {
	t.Helper()
	if b.Status != protocol.StatusSuccess || b.Attempt != 1 || b.Worker != worker {
		t.Errorf("build %d %s: %s attempt %d on %q (%s), want success at the first attempt on %s",
			b.ID, b.Builder, b.Status, b.Attempt, b.Worker, b.Summary, worker)
	}
}

// blipProxy forwards TCP connections to a NATS server; cut drops the open
// ones as a network blip would, and new ones still get through.
type blipProxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	conns []net.Conn
	n     int
}

func newBlipProxy(t *testing.T, target string) *blipProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &blipProxy{ln: ln, target: target}
	go p.serve()
	t.Cleanup(func() { ln.Close(); p.cut() })
	return p
}

func (p *blipProxy) addr() string { return p.ln.Addr().String() }

func (p *blipProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.n++
		p.mu.Unlock()
		go func() { _, _ = io.Copy(s, c); s.Close() }()
		go func() { _, _ = io.Copy(c, s); c.Close() }()
	}
}

func (p *blipProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// accepted counts the connections made through the proxy.
func (p *blipProxy) accepted() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}
