package master_test

import (
	"bufio"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kiln-build/kiln/internal/kilntest"
	"github.com/kiln-build/kiln/master/sched"
	"github.com/kiln-build/kiln/protocol"
)

func TestSilentWorkerBuildIsLostAndRetriedElsewhere(t *testing.T) {
	f := newFarm(t, farmOpts{heartbeatTimeout: "500ms"})
	w1 := startFakeWorker(t, f.NATSURL, "w1", []string{"debian"}, 1)
	w1.hold = make(chan struct{}) // w1 never finishes
	res := f.force("liba@debian/bookworm/amd64")
	id := res.Builds[0]
	kilntest.WaitFor(t, 5*time.Second, "w1 to run the build", func() bool { return f.build(id).Status == protocol.StatusRunning })
	w1.kill()
	startFakeWorker(t, f.NATSURL, "w2", []string{"debian"}, 1)

	b := f.waitFinished(10*time.Second, id)[0]
	if b.Status != protocol.StatusSuccess || b.Worker != "w2" {
		t.Fatalf("build ended %s on %s, want success on w2", b.Status, b.Worker)
	}
	if len(b.Attempts) != 2 || b.Attempts[0].Status != protocol.StatusLost || b.Attempts[0].Worker != "w1" || b.Attempts[1].Status != protocol.StatusSuccess {
		t.Fatalf("attempts = %+v, want lost on w1 then success on w2", b.Attempts)
	}
}

func TestLostTooOftenEndsAsException(t *testing.T) {
	f := newFarm(t, farmOpts{heartbeatTimeout: "300ms"})
	res := f.force("liba@debian/bookworm/amd64")
	id := res.Builds[0]
	for i := range 3 {
		w := startFakeWorker(t, f.NATSURL, "w1", []string{"debian"}, 1)
		w.hold = make(chan struct{})
		kilntest.WaitFor(t, 5*time.Second, "attempt to run", func() bool { b := f.build(id); return b.Status == protocol.StatusRunning && b.Attempt == i+1 })
		w.kill()
		kilntest.WaitFor(t, 5*time.Second, "attempt to be lost", func() bool { return f.build(id).Status != protocol.StatusRunning })
	}
	b := f.build(id)
	if b.Status != protocol.StatusException || len(b.Attempts) != 3 {
		t.Fatalf("after 3 lost attempts: %s with %d attempts (%s)", b.Status, len(b.Attempts), b.Summary)
	}
}

func TestExplainSaysWhyARequestWaits(t *testing.T) {
	f := newFarm(t, farmOpts{})
	w := startFakeWorker(t, f.NATSURL, "w1", []string{"debian"}, 1)
	w.hold = make(chan struct{})
	res := f.force("liba") // liba, libb, app on both targets
	byBuilder := map[string]int64{}
	for _, id := range res.Builds {
		byBuilder[f.build(id).Builder] = id
	}
	kilntest.WaitFor(t, 5*time.Second, "liba on debian to run", func() bool {
		return f.build(byBuilder["liba@debian/bookworm/amd64"]).Status == protocol.StatusRunning
	})
	for _, tc := range []struct {
		builder string
		want    string
	}{
		{"libb@debian/bookworm/amd64", "dependency liba@debian/bookworm/amd64"},
		{"liba@centos/9/x86_64", "no connected worker has tags centos"},
		{"liba@debian/bookworm/amd64", "not waiting: build is running"},
	} {
		var e sched.Explanation
		if code := f.call("GET", "/api/v1/requests/"+itoa(byBuilder[tc.builder])+"/explain", nil, &e); code != 200 {
			t.Fatalf("explain %s: HTTP %d", tc.builder, code)
		}
		if !strings.Contains(e.Reason, tc.want) {
			t.Errorf("explain %s: %q, want mention of %q", tc.builder, e.Reason, tc.want)
		}
	}
	// A second debian request while w1's one slot is taken: slots busy.
	other := f.force("app@debian/bookworm/amd64")
	_ = other
	rb := f.force("liba@debian/bookworm/amd64") // supersedes nothing: liba is running, not pending
	var e sched.Explanation
	f.call("GET", "/api/v1/requests/"+itoa(rb.Builds[0])+"/explain", nil, &e)
	if !strings.Contains(e.Reason, "all slots busy") || len(e.BusyWorkers) != 1 {
		t.Errorf("explain with w1 full: %+v", e)
	}
	if code := f.call("GET", "/api/v1/requests/424242/explain", nil, nil); code != http.StatusNotFound {
		t.Errorf("explain unknown: HTTP %d, want 404", code)
	}
}

func TestCollapseSupersedesPendingRequests(t *testing.T) {
	f := newFarm(t, farmOpts{})
	first := f.force("liba@centos/9/x86_64") // no centos worker: stays pending
	second := f.force("liba@centos/9/x86_64")
	old := f.build(first.Builds[0])
	if old.Status != protocol.StatusSuperseded || old.SupersededBy != second.Builds[0] {
		t.Fatalf("older request: %s superseded_by %d, want superseded by %d", old.Status, old.SupersededBy, second.Builds[0])
	}
}

func TestLogCancelAndArtifactsOverHTTP(t *testing.T) {
	f := newFarm(t, farmOpts{})
	w := startFakeWorker(t, f.NATSURL, "w1", []string{"debian"}, 1)
	w.hold = make(chan struct{})
	res := f.force("liba@debian/bookworm/amd64")
	id := res.Builds[0]
	kilntest.WaitFor(t, 5*time.Second, "build to run", func() bool { return f.build(id).Status == protocol.StatusRunning })

	// Follow the live log in the background; it must end when the build does.
	resp, err := http.Get(f.url("/api/v1/builds/" + itoa(id) + "/log?follow=1"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := make(chan string, 64)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	waitLine := func(want string) {
		t.Helper()
		deadline := time.After(5 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("stream closed before %q", want)
				}
				if strings.Contains(l, want) {
					return
				}
			case <-deadline:
				t.Fatalf("no %q in followed log", want)
			}
		}
	}
	waitLine("hello from w1")

	var cancelled struct{ Status string }
	if code := f.call("POST", "/api/v1/builds/"+itoa(id)+"/cancel", nil, &cancelled); code != 200 || cancelled.Status != protocol.StatusCancelled {
		t.Fatalf("cancel: HTTP %d status %s", code, cancelled.Status)
	}
	waitLine("event: end")
	if code := f.call("POST", "/api/v1/builds/"+itoa(id)+"/cancel", nil, nil); code != http.StatusConflict {
		t.Errorf("second cancel: HTTP %d, want 409", code)
	}

	plain, err := http.Get(f.url("/api/v1/builds/" + itoa(id) + "/log"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(plain.Body)
	plain.Body.Close()
	if !strings.Contains(string(body), "building liba@debian/bookworm/amd64") {
		t.Errorf("plain log = %q", body)
	}
	for path, code := range map[string]int{
		"/api/v1/builds/999999":                              404,
		"/api/v1/builds/abc":                                 400,
		"/api/v1/builds?limit=x":                             400,
		"/api/v1/builds?colour=red":                          400,
		"/api/v1/builds/" + itoa(id) + "/artifacts/nope.deb": 404,
		"/api/v1/nosuch":                                     404,
	} {
		if got := f.call("GET", path, nil, nil); got != code {
			t.Errorf("GET %s: HTTP %d, want %d", path, got, code)
		}
	}
}
