package master_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/kiln-build/kiln/internal/kilntest"
	"github.com/kiln-build/kiln/protocol"
)

func TestDuplicateResultIsIgnoredAndStaleAttemptIsCancelled(t *testing.T) {
	f := newFarm(t, farmOpts{})
	w := startFakeWorker(t, f.NATSURL, "w1", []string{"debian"}, 2)
	res := f.force("liba@debian/bookworm/amd64")
	b := f.waitFinished(5*time.Second, res.Builds[0])[0]
	if b.Status != protocol.StatusSuccess {
		t.Fatalf("build: %s", b.Status)
	}

	// The worker missed the ack and repeats the result, this time claiming
	// a different outcome: the master acks and changes nothing.
	dup := protocol.Result{V: protocol.Version, Worker: "w1", Build: itoa(b.ID), Attempt: b.Attempt, Status: protocol.StatusFailure, Ended: time.Now()}
	ack := w.report(dup)
	if !ack.OK || ack.Cancel {
		t.Errorf("duplicate result ack = %+v, want OK without cancel", ack)
	}
	after := f.build(b.ID)
	if after.Status != protocol.StatusSuccess || !after.Ended.Equal(b.Ended) || len(after.Attempts) != 1 {
		t.Errorf("duplicate changed the build: %s ended %s attempts %d", after.Status, after.Ended, len(after.Attempts))
	}

	// A result for an attempt the master never gave is answered with cancel.
	stale := dup
	stale.Attempt = 7
	if ack := w.report(stale); !ack.Cancel {
		t.Errorf("stale result ack = %+v, want cancel", ack)
	}
	unknown := dup
	unknown.Build = "999999"
	if ack := w.report(unknown); !ack.Cancel {
		t.Errorf("unknown build result ack = %+v, want cancel", ack)
	}
}

func TestMalformedMessagesAreDropped(t *testing.T) {
	f := newFarm(t, farmOpts{})
	w := startFakeWorker(t, f.NATSURL, "w1", []string{"debian"}, 2)
	for _, subj := range []string{protocol.HelloSubject("w1"), protocol.HeartbeatSubject("w1"), protocol.EventSubject("w1"), protocol.ResultSubject("w1"), "kiln.worker.w1.bogus"} {
		for _, payload := range []string{"", "{", `{"v":1,"worker":"w2"}`, `{"v":1,"worker":"w1","tags":"x","running":"r","attempt":"z","status":"exploded"}`, "\x00\xff"} {
			if err := w.nc.Publish(subj, []byte(payload)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	// Still alive and scheduling.
	res := f.force("liba@debian/bookworm/amd64")
	if b := f.waitFinished(5*time.Second, res.Builds[0])[0]; b.Status != protocol.StatusSuccess {
		t.Fatalf("after garbage, build ended %s", b.Status)
	}
}

// permissionError subscribes or publishes and reports the server's verdict.
func permissionError(t *testing.T, nc *nats.Conn) chan error {
	errs := make(chan error, 16)
	nc.SetErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err })
	return errs
}

func TestWorkerCredentialsAndPermissions(t *testing.T) {
	f := newFarm(t, farmOpts{})

	if _, err := dialWorker(t, f.NATSURL, "w1", "wrong-password"); err == nil {
		t.Fatal("wrong password: connected")
	} else if !strings.Contains(strings.ToLower(err.Error()), "authorization") {
		t.Errorf("wrong password: %v, want an authorization error", err)
	}
	if _, err := dialWorker(t, f.NATSURL, "intruder", "secret-w1"); err == nil {
		t.Fatal("unknown user: connected")
	}

	nc, err := dialWorker(t, f.NATSURL, "w1", "secret-w1")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	errs := permissionError(t, nc)
	expectViolation := func(what string) {
		t.Helper()
		select {
		case err := <-errs:
			if !errors.Is(err, nats.ErrPermissionViolation) && !strings.Contains(strings.ToLower(err.Error()), "permissions violation") {
				t.Errorf("%s: %v, want a permissions violation", what, err)
			}
		case <-time.After(2 * time.Second):
			t.Errorf("%s: allowed", what)
		}
	}
	// w1 may not read w2's jobs or cancels, nor speak as w2.
	for _, subj := range []string{protocol.JobSubject("w2"), protocol.CancelSubject("w2"), "kiln.job.*", "kiln.>", protocol.ResultSubject("w2")} {
		if _, err := nc.SubscribeSync(subj); err != nil {
			t.Fatal(err)
		}
		nc.Flush()
		expectViolation("subscribe " + subj)
	}
	for _, subj := range []string{protocol.ResultSubject("w2"), protocol.EventSubject("w2"), protocol.JobSubject("w2"), protocol.LogSubject("w2", "1")} {
		if err := nc.Publish(subj, []byte("{}")); err != nil {
			t.Fatal(err)
		}
		nc.Flush()
		expectViolation("publish " + subj)
	}
	// Its own subjects work.
	if _, err := nc.SubscribeSync(protocol.JobSubject("w1")); err != nil {
		t.Fatal(err)
	}
	nc.Flush()
	select {
	case err := <-errs:
		t.Errorf("own job subject refused: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
}

func TestHelloFromAnotherProtocolVersionIsRefused(t *testing.T) {
	f := newFarm(t, farmOpts{})
	nc, err := dialWorker(t, f.NATSURL, "w1", "secret-w1")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	msg, err := nc.Request(protocol.HelloSubject("w1"), protocol.Encode(protocol.Hello{V: protocol.Version + 1, Worker: "w1", Tags: []string{"debian"}, Slots: 1}), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var r protocol.HelloReply
	if err := protocol.Decode(msg.Data, &r); err != nil {
		t.Fatal(err)
	}
	if r.OK || !strings.Contains(r.Error, "protocol "+strconv.Itoa(protocol.Version+1)) || !strings.Contains(r.Error, "speaks "+strconv.Itoa(protocol.Version)) {
		t.Errorf("hello v%d: %+v, want a refusal naming both versions", protocol.Version+1, r)
	}
	if ws := f.api().Workers(); len(ws) != 0 {
		t.Errorf("refused worker recorded: %+v", ws)
	}
}

func TestReturningWorkerIsToldToCancelWhatWasGivenAway(t *testing.T) {
	f := newFarm(t, farmOpts{heartbeatTimeout: "400ms"})
	w1 := startFakeWorker(t, f.NATSURL, "w1", []string{"debian"}, 1)
	w1.hold = make(chan struct{})
	id := f.force("liba@debian/bookworm/amd64").Builds[0]
	kilntest.WaitFor(t, 5*time.Second, "w1 to run the build", func() bool { return f.build(id).Status == protocol.StatusRunning })
	w1.kill()
	startFakeWorker(t, f.NATSURL, "w2", []string{"debian"}, 1)
	f.waitFinished(10*time.Second, id)

	// w1 comes back still believing it runs the build.
	nc, err := dialWorker(t, f.NATSURL, "w1", "secret-w1")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	cancels, err := nc.SubscribeSync(protocol.CancelSubject("w1"))
	if err != nil {
		t.Fatal(err)
	}
	msg, err := nc.Request(protocol.HelloSubject("w1"), protocol.Encode(protocol.Hello{V: protocol.Version, Worker: "w1", Tags: []string{"debian"}, Slots: 1, Running: []string{itoa(id)}}), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var r protocol.HelloReply
	if err := protocol.Decode(msg.Data, &r); err != nil || !r.OK {
		t.Fatalf("hello: %+v %v", r, err)
	}
	if len(r.Cancel) != 1 || r.Cancel[0] != itoa(id) {
		t.Errorf("hello reply cancels %v, want [%d]", r.Cancel, id)
	}
	// A heartbeat still listing it earns an explicit cancel message too.
	if err := nc.Publish(protocol.HeartbeatSubject("w1"), protocol.Encode(protocol.Heartbeat{V: protocol.Version, Worker: "w1", Running: []string{itoa(id)}})); err != nil {
		t.Fatal(err)
	}
	cm, err := cancels.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatalf("no cancel after heartbeat: %v", err)
	}
	var c protocol.Cancel
	if err := protocol.Decode(cm.Data, &c); err != nil || c.Build != itoa(id) {
		t.Errorf("cancel = %+v, %v", c, err)
	}
	if b := f.build(id); b.Status != protocol.StatusSuccess || b.Worker != "w2" {
		t.Errorf("the build itself: %s on %s", b.Status, b.Worker)
	}
}
