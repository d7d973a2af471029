package poller

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kiln-build/kiln/internal/kilntest"
	"github.com/kiln-build/kiln/master/hooks"
)

type collector struct {
	mu      sync.Mutex
	changes []hooks.Change
	err     error
}

func (c *collector) sink(_ context.Context, ch hooks.Change) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	c.changes = append(c.changes, ch)
	return nil
}

func (c *collector) setErr(err error) {
	c.mu.Lock()
	c.err = err
	c.mu.Unlock()
}

// summary is what a test asserts on: component, ref, revision, source kind.
type summary struct{ component, branch, tag, revision, kind string }

func (c *collector) take() []summary {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []summary
	for _, ch := range c.changes {
		out = append(out, summary{ch.Component, ch.Branch, ch.Tag, ch.Revision, ch.Source.Kind})
	}
	c.changes = nil
	return out
}

// expect waits until exactly want has arrived, then a few more poll
// intervals to catch any extra change.
func (c *collector) expect(t *testing.T, settle time.Duration, want ...summary) {
	t.Helper()
	var got []summary
	deadline := time.Now().Add(10 * time.Second)
	for len(got) < len(want) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		got = append(got, c.take()...)
	}
	time.Sleep(settle)
	got = append(got, c.take()...)
	if len(want) == 0 {
		want = nil
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("changes:\n got %v\nwant %v", got, want)
	}
}

// run starts p and returns a stop function that waits for Run to return.
func run(t *testing.T, p *Poller) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Error("Run did not return after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func statusOf(p *Poller, url string) Status {
	key, _ := hooks.RepoKey(url)
	for _, s := range p.Status() {
		if s.Key == key {
			return s
		}
	}
	return Status{}
}

// servedRepo serves a new repository name.git over smart HTTP and returns
// it, still without commits, and its URL.
func servedRepo(t *testing.T, name string) (*kilntest.Repo, string) {
	t.Helper()
	r := kilntest.ServeGit(t).Repo(name + ".git")
	return r, r.URL
}

// watch has p poll url for the one component of that name.
func watch(t *testing.T, p *Poller, url, component string) {
	t.Helper()
	if err := p.Update([]Repo{{URL: url, Components: []hooks.Component{{Name: component, Repo: url}}}}); err != nil {
		t.Fatal(err)
	}
}

func newPoller(t *testing.T, o Options) *Poller {
	t.Helper()
	if o.Logger == nil {
		o.Logger = kilntest.QuietLogger()
	}
	p, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPollerReportsEachNewCommit(t *testing.T) {
	ws, url := servedRepo(t, "opencore")
	ws.Commit("main", "initial")

	const interval = 30 * time.Millisecond
	col := &collector{}
	p := newPoller(t, Options{Sink: col.sink, Interval: interval, Jitter: -1})
	repos, err := Group([]hooks.Component{
		{Name: "opencore", Repo: url},
		{Name: "opencore-dev", Repo: url + "/", Branches: []string{"dev"}},
	})
	if err != nil || len(repos) != 1 {
		t.Fatalf("Group: %v, %d repos; want one shared repository", err, len(repos))
	}
	if err := p.Update(repos); err != nil {
		t.Fatal(err)
	}
	run(t, p)

	kilntest.WaitFor(t, 10*time.Second, "the first poll", func() bool { return statusOf(p, url).Refs == 1 })
	col.expect(t, 3*interval) // first sight records main without a change
	if s := statusOf(p, url); s.LastError != "" || s.LastPoll.IsZero() || !s.NextPoll.After(s.LastPoll) {
		t.Fatalf("status after first poll: %+v", s)
	}

	for i := range 3 {
		rev := ws.Commit("main", "change "+string(rune('a'+i)))
		col.expect(t, 3*interval, summary{"opencore", "main", "", rev, hooks.KindPoller})
	}

	devRev := ws.Commit("dev", "a new branch")
	col.expect(t, 3*interval, summary{"opencore-dev", "dev", "", devRev, hooks.KindPoller})

	tagged := ws.Tag("v1.0")
	col.expect(t, 3*interval,
		summary{"opencore", "", "v1.0", tagged, hooks.KindPoller},
		summary{"opencore-dev", "", "v1.0", tagged, hooks.KindPoller})

	if s := statusOf(p, url); s.LastChange.IsZero() || !reflect.DeepEqual(s.Components, []string{"opencore", "opencore-dev"}) {
		t.Errorf("status: %+v", s)
	}
}

func TestPollerPokeAndNotify(t *testing.T) {
	ws, url := servedRepo(t, "libgrace")
	ws.Commit("main", "initial")

	col := &collector{}
	// An hour between polls: anything seen below was asked for.
	p := newPoller(t, Options{Sink: col.sink, Interval: time.Hour})
	watch(t, p, url, "libgrace")
	run(t, p)
	kilntest.WaitFor(t, 10*time.Second, "the first poll", func() bool { return statusOf(p, url).Refs == 1 })

	rev := ws.Commit("main", "poked")
	p.Poke(url)
	col.expect(t, 50*time.Millisecond, summary{"libgrace", "main", "", rev, hooks.KindPoller})

	// A webhook already reported this one: the poll it triggers is silent.
	kilntest.WaitFor(t, 10*time.Second, "the poked poll", func() bool { return statusOf(p, url).Polls == 2 })
	rev = ws.Commit("main", "hooked")
	p.Notify("ssh://git@127.0.0.1:2222/libgrace.git", "refs/heads/main", rev)
	kilntest.WaitFor(t, 10*time.Second, "the notified poll", func() bool { return statusOf(p, url).Polls == 3 })
	col.expect(t, 50*time.Millisecond)

	p.Poke("https://unknown.example/repo") // ignored, must not block
}

func TestPollerFirstSightOption(t *testing.T) {
	ws, url := servedRepo(t, "widget")
	rev := ws.Commit("main", "initial")

	col := &collector{}
	p := newPoller(t, Options{Sink: col.sink, Interval: time.Hour, EmitOnFirstSight: true})
	watch(t, p, url, "widget")
	run(t, p)
	col.expect(t, 50*time.Millisecond, summary{"widget", "main", "", rev, hooks.KindPoller})
}

func TestPollerSinkFailureRetries(t *testing.T) {
	ws, url := servedRepo(t, "pkgtool")
	ws.Commit("main", "initial")

	col := &collector{}
	p := newPoller(t, Options{Sink: col.sink, Interval: 20 * time.Millisecond, MaxBackoff: 40 * time.Millisecond, Jitter: -1})
	watch(t, p, url, "pkgtool")
	run(t, p)
	kilntest.WaitFor(t, 10*time.Second, "the first poll", func() bool { return statusOf(p, url).Refs == 1 })

	col.setErr(errors.New("not the leader"))
	rev := ws.Commit("main", "while refused")
	kilntest.WaitFor(t, 10*time.Second, "a refused report", func() bool { return statusOf(p, url).Failures > 0 })
	if s := statusOf(p, url); !strings.Contains(s.LastError, "not the leader") {
		t.Fatalf("last error %q", s.LastError)
	}
	col.setErr(nil)
	col.expect(t, 100*time.Millisecond, summary{"pkgtool", "main", "", rev, hooks.KindPoller})
	kilntest.WaitFor(t, 10*time.Second, "recovery", func() bool { return statusOf(p, url).Failures == 0 })
}

func TestPollerBacksOffAndRecovers(t *testing.T) {
	root := t.TempDir()
	ws := kilntest.GitRepo(t, kilntest.GitPushTo(filepath.Join(root, "legacy.git")))
	ws.Commit("main", "initial")

	// A loopback port nobody listens on, that the server takes later.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	url := "http://" + addr + "/legacy.git"

	const interval, maxBackoff = 20 * time.Millisecond, 160 * time.Millisecond
	col := &collector{}
	p := newPoller(t, Options{Sink: col.sink, Interval: interval, MaxBackoff: maxBackoff, Jitter: -1, Timeout: time.Second})
	watch(t, p, url, "legacy")
	run(t, p)

	seen := map[int]time.Duration{}
	kilntest.WaitFor(t, 10*time.Second, "five failures", func() bool {
		s := statusOf(p, url)
		if s.Failures > 0 {
			seen[s.Failures] = s.NextPoll.Sub(s.LastPoll)
		}
		return s.Failures >= 5
	})
	want := map[int]time.Duration{1: 40 * time.Millisecond, 2: 80 * time.Millisecond, 3: maxBackoff, 4: maxBackoff}
	for n, d := range want {
		if got, ok := seen[n]; ok && got != d {
			t.Errorf("after %d failures the next poll is in %v, want %v", n, got, d)
		}
	}
	if s := statusOf(p, url); !strings.Contains(s.LastError, "ls-remote") {
		t.Errorf("last error %q", s.LastError)
	}

	l, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("port %s taken meanwhile: %v", addr, err)
	}
	srv := &http.Server{Handler: kilntest.GitHandler(t, root)}
	go srv.Serve(l)
	defer srv.Close()

	kilntest.WaitFor(t, 10*time.Second, "recovery", func() bool { s := statusOf(p, url); return s.Failures == 0 && s.Refs == 1 })
	if s := statusOf(p, url); s.LastError != "" || s.NextPoll.Sub(s.LastPoll) != interval {
		t.Errorf("after recovery: %+v", s)
	}
	rev := ws.Commit("main", "after the outage")
	col.expect(t, 3*interval, summary{"legacy", "main", "", rev, hooks.KindPoller})
}

func TestPollerUpdate(t *testing.T) {
	forge := kilntest.ServeGit(t)
	a := forge.Repo("a.git")
	a.Commit("main", "a")
	b := forge.Repo("b.git")
	b.Commit("main", "b")
	urlA, urlB := a.URL, b.URL

	const interval = 20 * time.Millisecond
	col := &collector{}
	p := newPoller(t, Options{Sink: col.sink, Interval: interval, Jitter: -1})
	stop := run(t, p)
	if err := p.Update([]Repo{
		{URL: urlA, Components: []hooks.Component{{Name: "a1", Repo: urlA}}},
		{URL: urlB, Components: []hooks.Component{{Name: "b1", Repo: urlB}}},
	}); err != nil {
		t.Fatal(err)
	}
	kilntest.WaitFor(t, 10*time.Second, "both seeded", func() bool { return statusOf(p, urlA).Refs == 1 && statusOf(p, urlB).Refs == 1 })

	if err := p.Update([]Repo{{URL: "not a url"}}); err == nil {
		t.Fatal("Update accepted a bad URL")
	}
	if n := len(p.Status()); n != 2 {
		t.Fatalf("a refused Update changed the pollers: %d left", n)
	}
	if err := p.Update([]Repo{{URL: urlA}, {URL: urlA + "/"}}); err == nil {
		t.Fatal("Update accepted one repository twice")
	}

	// Drop b, give a another component: a keeps what it saw, so its next
	// commit is a change for the new component and nothing else is.
	if err := p.Update([]Repo{{URL: urlA, Components: []hooks.Component{{Name: "a2", Repo: urlA}}}}); err != nil {
		t.Fatal(err)
	}
	if st := p.Status(); len(st) != 1 || st[0].Refs != 1 || !reflect.DeepEqual(st[0].Components, []string{"a2"}) {
		t.Fatalf("status after update: %+v", st)
	}
	b.Commit("main", "b moves unwatched")
	rev := a.Commit("main", "a moves")
	col.expect(t, 5*interval, summary{"a2", "main", "", rev, hooks.KindPoller})

	stop()
	// Stopped, Update still records the set; Run picks it up again.
	if err := p.Update([]Repo{{URL: urlB, Components: []hooks.Component{{Name: "b1", Repo: urlB}}}}); err != nil {
		t.Fatal(err)
	}
	run(t, p)
	kilntest.WaitFor(t, 10*time.Second, "b polled again", func() bool { return statusOf(p, urlB).Refs == 1 })
	if len(p.Status()) != 1 {
		t.Errorf("status: %+v", p.Status())
	}
}

func TestRunTwice(t *testing.T) {
	p := newPoller(t, Options{Sink: (&collector{}).sink})
	run(t, p)
	time.Sleep(10 * time.Millisecond)
	if err := p.Run(context.Background()); !errors.Is(err, ErrRunning) {
		t.Errorf("second Run: %v, want ErrRunning", err)
	}
}

func TestBackoff(t *testing.T) {
	tests := []struct {
		interval, limit time.Duration
		failures        int
		want            time.Duration
	}{
		{time.Minute, 30 * time.Minute, 0, time.Minute},
		{time.Minute, 30 * time.Minute, 1, 2 * time.Minute},
		{time.Minute, 30 * time.Minute, 4, 16 * time.Minute},
		{time.Minute, 30 * time.Minute, 5, 30 * time.Minute},
		{time.Minute, 30 * time.Minute, 1000, 30 * time.Minute},
		{time.Hour, 30 * time.Minute, 3, time.Hour}, // never faster than the interval
	}
	for _, tt := range tests {
		if got := backoff(tt.interval, tt.limit, tt.failures); got != tt.want {
			t.Errorf("backoff(%v, %v, %d) = %v, want %v", tt.interval, tt.limit, tt.failures, got, tt.want)
		}
	}
	for range 100 {
		if d := jitter(time.Minute, 0.1); d < 54*time.Second || d > 66*time.Second {
			t.Fatalf("jitter(1m, 0.1) = %v", d)
		}
	}
}

func TestPollerSeed(t *testing.T) {
	ws, url := servedRepo(t, "grace")
	reported := ws.Commit("main", "reported by the old leader")
	ws.Tag("v0.9")
	missed := ws.Commit("main", "pushed during the failover")
	ws.Commit("dev", "never reported")

	col := &collector{}
	var mu sync.Mutex
	var asked []string
	p := newPoller(t, Options{
		Sink:     col.sink,
		Interval: time.Hour,
		Seed: func(repoURL string) map[string]string {
			mu.Lock()
			defer mu.Unlock()
			asked = append(asked, repoURL)
			return map[string]string{"refs/heads/main": reported}
		},
	})
	comps := []hooks.Component{{Name: "grace", Repo: url, Branches: []string{"main", "dev"}}}
	if err := p.Update([]Repo{{URL: url, Components: comps}}); err != nil {
		t.Fatal(err)
	}
	run(t, p)
	// main moved since the seed: a change. dev and the tag were never
	// seeded: first sight, recorded quietly.
	col.expect(t, 50*time.Millisecond, summary{"grace", "main", "", missed, hooks.KindPoller})
	kilntest.WaitFor(t, 10*time.Second, "the first poll", func() bool { return statusOf(p, url).Polls == 1 })
	p.Poke(url)
	kilntest.WaitFor(t, 10*time.Second, "a second poll", func() bool { return statusOf(p, url).Polls == 2 })
	col.expect(t, 50*time.Millisecond)
	if s := statusOf(p, url); s.Refs != 3 {
		t.Errorf("%d refs recorded, want main, dev and v0.9", s.Refs)
	}
	mu.Lock()
	defer mu.Unlock()
	if !reflect.DeepEqual(asked, []string{url}) {
		t.Errorf("Seed asked for %v, want once for %s", asked, url)
	}
}

func TestPollerDefaultBranchFromHEAD(t *testing.T) {
	ws := kilntest.ServeGit(t).Repo("trunky.git", kilntest.GitHead("trunk"))
	ws.Commit("trunk", "initial")
	ws.Commit("main", "a branch that is not the default here")
	url := ws.URL

	const interval = 20 * time.Millisecond
	col := &collector{}
	p := newPoller(t, Options{Sink: col.sink, Interval: interval, Jitter: -1})
	watch(t, p, url, "trunky")
	run(t, p)
	kilntest.WaitFor(t, 10*time.Second, "the first poll", func() bool { return statusOf(p, url).Refs == 2 })

	ws.Commit("main", "not built: main is not the default branch")
	rev := ws.Commit("trunk", "built")
	col.expect(t, 3*interval, summary{"trunky", "trunk", "", rev, hooks.KindPoller})
}

// TestPollerParallel checks that no more than Parallel ls-remotes are in
// flight, however many repositories there are.
func TestPollerParallel(t *testing.T) {
	root := t.TempDir()
	var mu sync.Mutex
	inFlight, peak := 0, 0
	backend := kilntest.GitHandler(t, root)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		inFlight++
		peak = max(peak, inFlight)
		mu.Unlock()
		time.Sleep(20 * time.Millisecond)
		backend.ServeHTTP(w, r)
		mu.Lock()
		inFlight--
		mu.Unlock()
	}))
	defer srv.Close()
	var comps []hooks.Component
	for i := range 6 {
		name := string(rune('a'+i)) + ".git"
		kilntest.GitRepo(t, kilntest.GitPushTo(filepath.Join(root, name))).Commit("main", "initial")
		comps = append(comps, hooks.Component{Name: name, Repo: srv.URL + "/" + name})
	}
	repos, err := Group(comps)
	if err != nil {
		t.Fatal(err)
	}
	p := newPoller(t, Options{Sink: (&collector{}).sink, Interval: time.Hour, Parallel: 2})
	if err := p.Update(repos); err != nil {
		t.Fatal(err)
	}
	run(t, p)
	kilntest.WaitFor(t, 10*time.Second, "every repository polled", func() bool {
		for _, s := range p.Status() {
			if s.Refs != 1 {
				return false
			}
		}
		return true
	})
	mu.Lock()
	defer mu.Unlock()
	if peak > 2 {
		t.Errorf("%d ls-remotes at once, want at most 2", peak)
	}
	if peak < 2 {
		t.Errorf("peak %d: the test did not exercise the limit", peak)
	}
}
