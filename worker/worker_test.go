package worker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kiln-build/kiln/internal/kilntest"
	"github.com/kiln-build/kiln/protocol"
)

const nfpmYAML = `name: hello
arch: ${ARCH}
version: ${prop.version}
maintainer: Kiln Test <test@example.com>
description: test package
contents:
  - src: hello.txt
    dst: /usr/share/hello/hello.txt
`

func TestBuildEndToEnd(t *testing.T) {
	s := startServer(t, "w1")
	m := newTestMaster(t, s)
	startWorker(t, s, Config{Name: "w1", Tags: []string{"nfpm", "fast"}, HeartbeatInterval: time.Hour})
	m.waitFor("hello", 10*time.Second, func() bool { return len(m.hellos) > 0 })

	src := kilntest.GitRepo(t)
	src.WriteFiles(map[string]string{"VERSION": "1.4.2\n", "hello.txt": "hello\n", "nfpm.yaml": nfpmYAML})
	rev := src.Commit("main", "initial")
	job := protocol.Job{
		V: protocol.Version, Build: "b1", Attempt: 1, Builder: "hello@debian/bookworm/amd64", Component: "hello",
		Target: "debian/bookworm/amd64", Format: "apt", Git: src.Dir, Revision: rev,
		Steps: []protocol.Step{
			{Name: "checkout", Type: "checkout"},
			{Name: "version", Type: "shell", Command: []string{"cat", "VERSION"}, SetProperty: map[string]string{"version": `^(\d+\.\d+\.\d+)$`}},
			{Name: "package", Type: "nfpm"},
			{Name: "optional", Type: "shell", Script: "echo lint warnings; exit 3", AllowFailure: true},
			{Name: "upload", Type: "upload", Artifacts: []string{"dist/*.deb"}},
			{Name: "announce", Type: "shell", Script: "echo built ${prop.component} ${prop.version} at ${prop.revision}"},
		},
	}
	if ack := m.sendJob("w1", job); !ack.OK {
		t.Fatalf("job refused: %s", ack.Error)
	}
	res := m.result("b1", 30*time.Second)
	if res.Status != protocol.StatusSuccess {
		t.Fatalf("status %s: %s", res.Status, res.Summary)
	}
	if res.Properties["version"] != "1.4.2" || res.Properties["revision"] != rev {
		t.Errorf("properties %v", res.Properties)
	}

	m.mu.Lock()
	hello := m.hellos[0]
	var statuses []string
	for _, e := range m.events {
		statuses = append(statuses, e.Name+":"+e.Status)
	}
	m.mu.Unlock()
	for _, tag := range []string{"fast", "nfpm", "x86_64", "amd64"} {
		if !slices.Contains(hello.Tags, tag) {
			t.Errorf("hello tags %v lack %s", hello.Tags, tag)
		}
	}
	want := []string{"checkout:running", "checkout:success", "version:running", "version:success", "package:running", "package:success",
		"optional:running", "optional:failure", "upload:running", "upload:success", "announce:running", "announce:success"}
	if !slices.Equal(statuses, want) {
		t.Errorf("events\n%v\nwant\n%v", statuses, want)
	}

	logs := m.logLines("w1", "b1")
	if !slices.Contains(logs[1], "1.4.2") || !slices.Contains(logs[5], "built hello 1.4.2 at "+rev) || !slices.Contains(logs[3], "lint warnings") {
		t.Errorf("logs read back from the stream: %v", logs)
	}

	if len(res.Artifacts) != 1 || !strings.HasPrefix(res.Artifacts[0].Name, "dist/hello_1.4.2_amd64.deb") {
		t.Fatalf("artifacts %+v", res.Artifacts)
	}
	a := res.Artifacts[0]
	data, err := m.obs.GetBytes(context.Background(), a.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if hex.EncodeToString(sum[:]) != a.SHA256 || int64(len(data)) != a.Size || !strings.HasPrefix(string(data), "!<arch>") {
		t.Errorf("stored artifact: %d bytes, sha256 %x, want %d bytes %s", len(data), sum, a.Size, a.SHA256)
	}

	// The same package built again is found in the store, not uploaded twice.
	job.Build = "b2"
	if ack := m.sendJob("w1", job); !ack.OK {
		t.Fatalf("job refused: %s", ack.Error)
	}
	if res := m.result("b2", 30*time.Second); res.Status != protocol.StatusSuccess || res.Artifacts[0].SHA256 != a.SHA256 {
		t.Fatalf("rebuild: %s %s %+v", res.Status, res.Summary, res.Artifacts)
	}
	if !slices.ContainsFunc(m.logLines("w1", "b2")[4], func(l string) bool { return strings.HasPrefix(l, "already stored dist/hello") }) {
		t.Errorf("rebuild uploaded the artifact again: %q", m.logLines("w1", "b2")[4])
	}
}

func TestJobHandling(t *testing.T) {
	sleepy := protocol.Job{V: protocol.Version, Build: "busy", Attempt: 1, Steps: []protocol.Step{{Type: "shell", Script: "sleep 30"}}}
	tests := []struct {
		name      string
		job       any
		busy      bool
		wantAck   string // "" = accepted
		wantState string
		summary   string
	}{
		{name: "not json", job: []byte("{nope"), wantAck: "bad message"},
		{name: "no version", job: protocol.Job{Build: "x", Steps: sleepy.Steps}, wantAck: "bad message: no protocol version"},
		{name: "build id with a dot", job: protocol.Job{V: 1, Build: "a.b", Steps: sleepy.Steps}, wantAck: "not one NATS subject token"},
		{name: "no steps", job: protocol.Job{V: 1, Build: "x"}, wantAck: "no steps"},
		{name: "no free slot", busy: true, job: protocol.Job{V: 1, Build: "x", Steps: sleepy.Steps}, wantAck: refuseFull},
		{
			name: "unknown step type fails the build", job: protocol.Job{V: 1, Build: "x", Steps: []protocol.Step{
				{Type: "shell", Script: "true"}, {Name: "chroot", Type: "teleport", AllowFailure: true}, {Type: "shell", Script: "true"}}},
			wantState: protocol.StatusFailure, summary: `step chroot: unknown step type "teleport"`,
		},
		{
			// Only a master of another protocol version sends this; the
			// worker neither runs nor skips the step on a guess.
			name: "condition the worker cannot judge fails the build", job: protocol.Job{V: 1, Build: "x", Target: "debian/bookworm/amd64", Steps: []protocol.Step{
				{Name: "maybe", Type: "shell", Script: "true", AllowFailure: true, When: []protocol.Condition{{Key: "phase_of_moon", Match: "full"}}}, {Type: "shell", Script: "true"}}},
			wantState: protocol.StatusFailure, summary: `step maybe: cannot evaluate when: unknown condition key "phase_of_moon"`,
		},
		{
			name: "failing step fails the build", job: protocol.Job{V: 1, Build: "x", Steps: []protocol.Step{{Name: "make", Type: "shell", Script: "exit 2"}}},
			wantState: protocol.StatusFailure, summary: "step make: exit 2",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, "w1")
			m := newTestMaster(t, s)
			startWorker(t, s, Config{Name: "w1", Slots: 1})
			m.waitFor("hello", 10*time.Second, func() bool { return len(m.hellos) > 0 })
			if tt.busy {
				if ack := m.sendJob("w1", sleepy); !ack.OK {
					t.Fatalf("first job refused: %s", ack.Error)
				}
			}
			ack := m.sendJob("w1", tt.job)
			if tt.wantAck != "" {
				if ack.OK || !strings.Contains(ack.Error, tt.wantAck) {
					t.Fatalf("ack %+v, want refusal %q", ack, tt.wantAck)
				}
				return
			}
			if !ack.OK {
				t.Fatalf("refused: %s", ack.Error)
			}
			res := m.result("x", 10*time.Second)
			if res.Status != tt.wantState || !strings.Contains(res.Summary, tt.summary) {
				t.Fatalf("result %s %q, want %s %q", res.Status, res.Summary, tt.wantState, tt.summary)
			}
			// The worker is still alive and serving after whatever it was sent.
			if ack := m.sendJob("w1", protocol.Job{V: 1, Build: "after", Steps: []protocol.Step{{Type: "shell", Script: "true"}}}); !ack.OK {
				t.Fatalf("worker refused a good job afterwards: %s", ack.Error)
			}
			if res := m.result("after", 10*time.Second); res.Status != protocol.StatusSuccess {
				t.Fatalf("good job afterwards: %s %s", res.Status, res.Summary)
			}
		})
	}
}

// TestConditionalSteps: a step's when: is judged just before it would run,
// against the target and the properties earlier steps set from their output
// (the seed farm's case: cat /etc/debian_version, then a step for 12 only).
// A step whose condition fails is reported once, as skipped, naming the
// condition and what it saw; it leaves a line in its log; the build goes on
// and its result is its other steps'.
func TestConditionalSteps(t *testing.T) {
	s := startServer(t, "w1")
	m := newTestMaster(t, s)
	startWorker(t, s, Config{Name: "w1"})
	m.waitFor("hello", 10*time.Second, func() bool { return len(m.hellos) > 0 })

	prop := func(name, re string) []protocol.Condition {
		return []protocol.Condition{{Key: "property." + name, Match: re}}
	}
	job := protocol.Job{V: protocol.Version, Build: "c1", Attempt: 1, Target: "debian/bookworm/amd64", Format: "apt", Steps: []protocol.Step{
		{Name: "version", Type: "shell", Script: "echo 12.4", SetProperty: map[string]string{"debian_version": `^(\S+)$`}},
		{Name: "deb12", Type: "shell", Script: "echo for twelve", When: prop("debian_version", `^12\.`)},
		{Name: "deb11", Type: "shell", Script: "echo for eleven; exit 1", When: prop("debian_version", `^11\.`)},
		{Name: "ubuntu", Type: "shell", Script: "exit 1", When: []protocol.Condition{{Key: "distro", In: []string{"ubuntu"}}}},
		{Name: "never-set", Type: "shell", Script: "exit 1", When: prop("nobody_sets_this", "")},
		{Name: "not-unset", Type: "shell", Script: "echo unset is not yes", When: []protocol.Condition{{Key: "property.nobody_sets_this", Match: "^yes$", Not: true}}},
		{Name: "all-hold", Type: "shell", Script: "echo all hold", When: []protocol.Condition{
			{Key: "distro", In: []string{"debian"}}, {Key: "arch", Match: "64$"}, {Key: "format", In: []string{"apt"}}}},
	}}
	if ack := m.sendJob("w1", job); !ack.OK {
		t.Fatalf("job refused: %s", ack.Error)
	}
	res := m.result("c1", 30*time.Second)
	if res.Status != protocol.StatusSuccess || res.Summary != "" {
		t.Fatalf("result %s %q, want success: skipped steps neither fail nor end the build", res.Status, res.Summary)
	}

	m.mu.Lock()
	var got []string
	skipped := map[string]string{}
	for _, e := range m.events {
		got = append(got, e.Name+":"+e.Status)
		if e.Status == protocol.StatusSkipped {
			skipped[e.Name] = e.Summary
			if e.Started.IsZero() || !e.Ended.Equal(e.Started) {
				t.Errorf("skipped step %s: started %s, ended %s; want both, equal", e.Name, e.Started, e.Ended)
			}
		}
	}
	m.mu.Unlock()
	want := []string{"version:running", "version:success", "deb12:running", "deb12:success", "deb11:skipped", "ubuntu:skipped",
		"never-set:skipped", "not-unset:running", "not-unset:success", "all-hold:running", "all-hold:success"}
	if !slices.Equal(got, want) {
		t.Errorf("events\n%v\nwant\n%v", got, want)
	}
	wantSkipped := map[string]string{
		"deb11":     `skipped: when property.debian_version ~ ^11\. (was "12.4")`,
		"ubuntu":    "skipped: when distro in [ubuntu] (is debian)",
		"never-set": "skipped: when property.nobody_sets_this is set (not set)",
	}
	if !maps.Equal(skipped, wantSkipped) {
		t.Errorf("skip summaries\n%q\nwant\n%q", skipped, wantSkipped)
	}
	logs := m.logLines("w1", "c1")
	if !slices.Contains(logs[1], "for twelve") || !slices.Contains(logs[2], "step deb11 "+wantSkipped["deb11"]) || slices.Contains(logs[2], "for eleven") {
		t.Errorf("logs: %v", logs)
	}
}

func TestResultRepeatedUntilAcked(t *testing.T) {
	s := startServer(t, "w1")
	m := newTestMaster(t, s)
	m.dropResult = 2
	startWorker(t, s, Config{Name: "w1"})
	m.waitFor("hello", 10*time.Second, func() bool { return len(m.hellos) > 0 })
	if ack := m.sendJob("w1", protocol.Job{V: 1, Build: "r1", Attempt: 2, Steps: []protocol.Step{{Type: "shell", Script: "echo hi"}}}); !ack.OK {
		t.Fatal(ack.Error)
	}
	// Each unanswered request times out after requestTimeout, then backs off.
	m.waitFor("third result", 3*requestTimeout, func() bool { return len(m.results) == 3 })
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range m.results {
		if r.Build != "r1" || r.Attempt != 2 || r.Status != protocol.StatusSuccess || !r.Started.Equal(m.results[0].Started) {
			t.Errorf("repeated result differs: %+v", r)
		}
	}
}

func TestCancel(t *testing.T) {
	tests := []struct {
		name string
		how  func(m *testMaster)
	}{
		{"cancel message", func(m *testMaster) {
			reply, err := m.nc.Request(protocol.CancelSubject("w1"), protocol.Encode(protocol.Cancel{V: 1, Build: "c1", Reason: "user"}), 5*time.Second)
			if err != nil {
				m.t.Fatal(err)
			}
			var ack protocol.Ack
			if protocol.Decode(reply.Data, &ack) != nil || !ack.OK {
				m.t.Fatalf("cancel ack %s", reply.Data)
			}
		}},
		{"ack of a step event", nil},
		{"hello reply after the master restarted", func(m *testMaster) {
			m.mu.Lock()
			m.helloReply.Cancel = []string{"c1"}
			m.mu.Unlock()
			m.server.Restart()
			m.waitFor("hello after reconnect", 10*time.Second, func() bool {
				h := m.hellos[len(m.hellos)-1]
				return len(m.hellos) > 1 && slices.Equal(h.Running, []string{"c1"})
			})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, "w1")
			m := newTestMaster(t, s)
			m.cancelOnEv = tt.how == nil
			startWorker(t, s, Config{Name: "w1"})
			m.waitFor("hello", 10*time.Second, func() bool { return len(m.hellos) > 0 })
			job := protocol.Job{V: 1, Build: "c1", Steps: []protocol.Step{{Name: "long", Type: "shell", Script: "sleep 60"}, {Name: "never", Type: "shell", Script: "true"}}}
			if ack := m.sendJob("w1", job); !ack.OK {
				t.Fatal(ack.Error)
			}
			m.waitFor("step start", 10*time.Second, func() bool { return len(m.events) > 0 })
			start := time.Now()
			if tt.how != nil {
				tt.how(m)
			}
			res := m.result("c1", 10*time.Second)
			if res.Status != protocol.StatusCancelled {
				t.Fatalf("status %s (%s)", res.Status, res.Summary)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("cancel took %s", d)
			}
		})
	}
}

// Drain: the running build finishes and reports, a new job is refused, and
// Run returns by itself once the worker is idle.
func TestDrain(t *testing.T) {
	s := startServer(t, "w1")
	m := newTestMaster(t, s)
	rw := startWorker(t, s, Config{Name: "w1", Slots: 2})
	m.waitFor("hello", 10*time.Second, func() bool { return len(m.hellos) > 0 })
	job := protocol.Job{V: 1, Build: "d1", Steps: []protocol.Step{{Type: "shell", Script: "sleep 0.5; echo finished"}}}
	if ack := m.sendJob("w1", job); !ack.OK {
		t.Fatal(ack.Error)
	}
	rw.w.Drain()
	job.Build = "d2"
	if ack := m.sendJob("w1", job); ack.OK || ack.Error != refuseDraining {
		t.Fatalf("job while draining: %+v", ack)
	}
	select {
	case err := <-rw.done:
		t.Fatalf("Run returned before the running build finished: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	if err := rw.wait(t, 10*time.Second); err != nil {
		t.Fatalf("Run: %v", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.results) != 1 || m.results[0].Build != "d1" || m.results[0].Status != protocol.StatusSuccess {
		t.Fatalf("results after drain: %+v", m.results)
	}
}

// Cancelling Run's context cancels running builds, reports them lost so the
// master can retry them elsewhere, and returns once they stopped.
func TestRunCancelled(t *testing.T) {
	s := startServer(t, "w1")
	m := newTestMaster(t, s)
	rw := startWorker(t, s, Config{Name: "w1"})
	m.waitFor("hello", 10*time.Second, func() bool { return len(m.hellos) > 0 })
	pidFile := filepath.Join(t.TempDir(), "pid")
	job := protocol.Job{V: 1, Build: "k1", Steps: []protocol.Step{{Type: "shell", Command: []string{"sh", "-c", "echo $$ > " + pidFile + "; exec sleep 60"}}}}
	if ack := m.sendJob("w1", job); !ack.OK {
		t.Fatal(ack.Error)
	}
	m.waitFor("heartbeat listing the build", 10*time.Second, func() bool {
		if len(m.heartbeats) == 0 {
			return false
		}
		h := m.heartbeats[len(m.heartbeats)-1]
		return slices.Equal(h.Running, []string{"k1"}) && h.Free == 0 && !h.Draining
	})
	start := time.Now()
	rw.cancel()
	if err := rw.wait(t, 10*time.Second); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Run took %s to return", d)
	}
	if res := m.result("k1", time.Second); res.Status != protocol.StatusLost {
		t.Errorf("result %s %q, want lost", res.Status, res.Summary)
	}
	raw, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("/proc/" + strings.TrimSpace(string(raw))); err == nil {
		if stat, _ := os.ReadFile("/proc/" + strings.TrimSpace(string(raw)) + "/stat"); !strings.Contains(string(stat), ") Z") {
			t.Errorf("build process %s still runs after Run returned", raw)
		}
	}
}

func TestWorkspaceLifetime(t *testing.T) {
	for _, keep := range []bool{false, true} {
		t.Run(map[bool]string{false: "removed", true: "kept"}[keep], func(t *testing.T) {
			s := startServer(t, "w1")
			m := newTestMaster(t, s)
			rw := startWorker(t, s, Config{Name: "w1", KeepWorkspaces: keep})
			m.waitFor("hello", 10*time.Second, func() bool { return len(m.hellos) > 0 })
			job := protocol.Job{V: 1, Build: "ws1", Attempt: 3, Steps: []protocol.Step{{Type: "shell", Script: "test -z \"$(ls -A)\"; touch marker"}}}
			if ack := m.sendJob("w1", job); !ack.OK {
				t.Fatal(ack.Error)
			}
			if res := m.result("ws1", 10*time.Second); res.Status != protocol.StatusSuccess {
				t.Fatalf("workspace was not fresh: %s %s", res.Status, res.Summary)
			}
			_, err := os.Stat(filepath.Join(rw.w.cfg.buildsDir(), "ws1-3", "marker"))
			if kept := err == nil; kept != keep {
				t.Errorf("workspace kept = %v, want %v", kept, keep)
			}
		})
	}
}

// A job the master repeats because it missed the ack runs once.
func TestDuplicateJob(t *testing.T) {
	s := startServer(t, "w1")
	m := newTestMaster(t, s)
	startWorker(t, s, Config{Name: "w1", Slots: 3})
	m.waitFor("hello", 10*time.Second, func() bool { return len(m.hellos) > 0 })
	job := protocol.Job{V: 1, Build: "dup", Attempt: 1, Steps: []protocol.Step{{Type: "shell", Script: "sleep 0.3"}}}
	for range 2 {
		if ack := m.sendJob("w1", job); !ack.OK {
			t.Fatalf("repeated job refused: %s", ack.Error)
		}
	}
	job.Attempt = 2
	if ack := m.sendJob("w1", job); ack.OK || !strings.Contains(ack.Error, "attempt 1 of this build still runs") {
		t.Fatalf("second attempt while the first runs: %+v", ack)
	}
	m.result("dup", 10*time.Second)
	time.Sleep(500 * time.Millisecond) // room for a second run to report, were there one
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.results) != 1 || len(m.events) != 2 {
		t.Errorf("the job ran more than once: %d results, %d events", len(m.results), len(m.events))
	}
}

// A worker that never reached its master stops at once when drained, and
// with an error when cancelled.
func TestStopWhileOffline(t *testing.T) {
	for _, drain := range []bool{true, false} {
		w, err := New(Config{Name: "w1", NATSURL: "nats://127.0.0.1:1", WorkDir: t.TempDir(), Logger: kilntest.Logger(t)})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- w.Run(ctx) }()
		time.Sleep(200 * time.Millisecond)
		if drain {
			w.Drain()
		} else {
			cancel()
		}
		select {
		case err := <-done:
			if drain && err != nil {
				t.Errorf("drained offline: %v", err)
			}
			if !drain && !errors.Is(err, context.Canceled) {
				t.Errorf("cancelled offline: %v, want context.Canceled", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("Run (drain %v) did not return while offline", drain)
		}
		cancel()
	}
}
