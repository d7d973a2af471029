package web

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// testSource is the in-memory farm the tests and the benchmark serve pages
// from. Build ids are positions in builds plus one.
type testSource struct {
	mu         sync.Mutex
	targets    []Target
	components []string
	noBuilder  map[string]bool // "component@target" the config excludes
	builds     []*BuildDetail
	latest     map[string]int64 // builder → newest build id
	logs       map[int64][]LogLine
	changed    chan struct{} // closed and replaced whenever a log grows or a build ends
	workers    []Worker
	changes    []Change
	repos      []Repository
	config     ConfigStatus
	pollers    []Poller
	followers  sync.WaitGroup
}

func newTestSource(targets []Target, components []string) *testSource {
	return &testSource{
		targets:    targets,
		components: components,
		noBuilder:  map[string]bool{},
		latest:     map[string]int64{},
		logs:       map[int64][]LogLine{},
		changed:    make(chan struct{}),
	}
}

// wait ends the FollowLog goroutines' test: every one must have returned.
func (s *testSource) wait(t testing.TB) {
	t.Helper()
	done := make(chan struct{})
	go func() { s.followers.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Error("FollowLog goroutines still running after their requests ended")
	}
}

func (s *testSource) broadcast() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *testSource) addBuild(b BuildDetail) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	b.ID = int64(len(s.builds) + 1)
	if b.Builder == "" {
		b.Builder = b.Component + "@" + b.Target
	}
	s.builds = append(s.builds, &b)
	s.latest[b.Builder] = b.ID
	return b.ID
}

func (s *testSource) appendLog(id int64, step string, lines ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range lines {
		s.logs[id] = append(s.logs[id], LogLine{Seq: int64(len(s.logs[id])), Step: step, Text: l})
	}
	s.broadcast()
}

func (s *testSource) finish(id int64, st Status) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.builds[id-1]
	b.Status = st
	b.Ended = b.Started.Add(time.Minute)
	s.broadcast()
}

func (s *testSource) Grid(ctx context.Context) (Grid, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := Grid{Targets: slices.Clone(s.targets)}
	for _, c := range s.components {
		row := GridRow{Component: c, Cells: make([]GridCell, len(s.targets))}
		for i, t := range s.targets {
			name := c + "@" + t.String()
			if s.noBuilder[name] {
				continue
			}
			cell := GridCell{Builder: name}
			if id := s.latest[name]; id != 0 {
				cell.Build, cell.Status = id, s.builds[id-1].Status
			}
			row.Cells[i] = cell
		}
		g.Rows = append(g.Rows, row)
	}
	return g, nil
}

func (s *testSource) Builds(ctx context.Context, q BuildQuery) (BuildPage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var p BuildPage
	for i := len(s.builds) - 1; i >= 0; i-- {
		b := s.builds[i]
		if (q.Component != "" && b.Component != q.Component) || (q.Target != "" && b.Target != q.Target) ||
			(q.Worker != "" && b.Worker != q.Worker) || (len(q.Statuses) > 0 && !slices.Contains(q.Statuses, b.Status)) {
			continue
		}
		p.Total++
		if p.Total > q.Offset && len(p.Builds) < q.Limit {
			p.Builds = append(p.Builds, b.BuildSummary)
		}
	}
	return p, nil
}

func (s *testSource) Build(ctx context.Context, id int64) (BuildDetail, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id < 1 || id > int64(len(s.builds)) {
		return BuildDetail{}, fmt.Errorf("build %d: %w", id, ErrNotFound)
	}
	return *s.builds[id-1], nil
}

func (s *testSource) FollowLog(ctx context.Context, id int64, from int64) (<-chan LogLine, error) {
	if _, err := s.Build(ctx, id); err != nil {
		return nil, err
	}
	ch := make(chan LogLine, 64)
	s.followers.Add(1)
	go func() {
		defer s.followers.Done()
		defer close(ch)
		next := from
		for {
			s.mu.Lock()
			lines := s.logs[id]
			var batch []LogLine
			if next < int64(len(lines)) {
				batch = slices.Clone(lines[next:])
			}
			ended := s.builds[id-1].Status.Finished()
			changed := s.changed
			s.mu.Unlock()
			for _, l := range batch {
				select {
				case ch <- l:
					next = l.Seq + 1
				case <-ctx.Done():
					return
				}
			}
			if ended && len(batch) == 0 {
				return
			}
			if len(batch) > 0 {
				continue
			}
			select {
			case <-changed:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch, nil
}

func (s *testSource) Workers(ctx context.Context) ([]Worker, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.workers), nil
}

func (s *testSource) Changes(ctx context.Context, q ChangeQuery) (ChangePage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var p ChangePage
	for i := len(s.changes) - 1; i >= 0; i-- {
		c := s.changes[i]
		if q.Component != "" && c.Component != q.Component {
			continue
		}
		p.Total++
		if p.Total > q.Offset && len(p.Changes) < q.Limit {
			p.Changes = append(p.Changes, c)
		}
	}
	return p, nil
}

func (s *testSource) Repositories(ctx context.Context) ([]Repository, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.repos), nil
}

func (s *testSource) ConfigStatus(ctx context.Context) (ConfigStatus, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.config, nil
}

func (s *testSource) Pollers(ctx context.Context) ([]Poller, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.pollers), nil
}

// actionCall is one call the recorder saw.
type actionCall struct {
	Op, User, Component, Target, Rev string
	Build                            int64
}

// testActions records what the pages ask of the farm; builds it forces or
// rebuilds are added to src so the redirect lands on a real page.
type testActions struct {
	src   *testSource
	mu    sync.Mutex
	calls []actionCall
}

func (a *testActions) record(c actionCall) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls = append(a.calls, c)
}

func (a *testActions) seen() []actionCall {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.calls)
}

func (a *testActions) Force(ctx context.Context, user, component, target, rev string) (Forced, error) {
	if !slices.Contains(a.src.components, component) {
		return Forced{}, fmt.Errorf("component %q: %w", component, ErrNotFound)
	}
	a.record(actionCall{Op: "force", User: user, Component: component, Target: target, Rev: rev})
	id := a.src.addBuild(BuildDetail{BuildSummary: BuildSummary{Component: component, Target: target, Revision: rev, Status: StatusPending, Waiting: "waiting for a worker with tags debian, amd64"}})
	return Forced{Change: 1, Builds: []int64{id}}, nil
}

func (a *testActions) Rebuild(ctx context.Context, user string, id int64) (int64, error) {
	b, err := a.src.Build(ctx, id)
	if err != nil {
		return 0, err
	}
	a.record(actionCall{Op: "rebuild", User: user, Build: id})
	return a.src.addBuild(BuildDetail{BuildSummary: BuildSummary{Component: b.Component, Target: b.Target, Revision: b.Revision, Status: StatusPending}}), nil
}

func (a *testActions) Cancel(ctx context.Context, user string, id int64) error {
	b, err := a.src.Build(ctx, id)
	if err != nil {
		return err
	}
	if b.Status.Finished() {
		return fmt.Errorf("build %d is already %s: %w", id, b.Status, ErrInvalid)
	}
	a.record(actionCall{Op: "cancel", User: user, Build: id})
	a.src.finish(id, StatusCancelled)
	return nil
}

// Fixed times keep rendered pages (and the golden file) stable.
var (
	t0      = time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	testNow = t0.Add(2 * time.Hour)
)

const xssMessage = "fix parser <script>alert('msg')</script>\n\nLonger body with \x1b[31mANSI\x1b[0m & <b>tags</b>."

// smallFarm is the fixture most handler tests read: two distros, three
// components, builds in every state, a lost worker and a published repo.
func smallFarm() *testSource {
	targets := []Target{
		{"debian", "bookworm", "amd64"}, {"debian", "bookworm", "arm64"}, {"debian", "trixie", "amd64"},
		{"centos", "9", "x86_64"}, {"centos", "9", "aarch64"},
	}
	s := newTestSource(targets, []string{"libgrace", "opencore", "kiln-tools"})
	s.noBuilder["kiln-tools@centos/9/aarch64"] = true
	s.changes = []Change{
		{ID: 1, Component: "libgrace", Revision: "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678", Branch: "main", Author: "Ada <ada@example.org>", Message: "initial import", Source: "poller", When: t0},
		{ID: 2, Component: "opencore", Revision: "0123456789abcdef0123456789abcdef01234567", Branch: "main", Author: "Eve <eve@example.org>", Message: xssMessage, Source: "webhook", When: t0.Add(time.Minute)},
	}
	add := func(comp string, tgt Target, st Status, change int) int64 {
		ch := s.changes[change]
		started := t0.Add(time.Duration(len(s.builds)) * time.Minute)
		b := BuildDetail{
			BuildSummary: BuildSummary{Component: comp, Target: tgt.String(), Revision: ch.Revision, Status: st, Worker: "w-deb-1", Created: started.Add(-time.Minute), Started: started},
			Change:       ch,
		}
		if st.Finished() {
			b.Ended = started.Add(3*time.Minute + 7*time.Second)
		}
		if st == StatusPending {
			b.Worker, b.Started = "", time.Time{}
			b.Waiting = "waiting for libgrace@" + tgt.String()
		}
		return s.addBuild(b)
	}
	for i, t := range targets {
		add("libgrace", t, StatusSuccess, 0)
		if i == 2 {
			add("opencore", t, StatusFailure, 1)
		} else {
			add("opencore", t, StatusSuccess, 1)
		}
	}
	running := add("opencore", targets[0], StatusRunning, 1)
	add("kiln-tools", targets[3], StatusPending, 0)
	b := s.builds[running-1]
	b.Steps = []Step{
		{Name: "checkout", Status: StatusSuccess, Started: b.Started, Ended: b.Started.Add(4 * time.Second)},
		{Name: "pbuilder", Status: StatusRunning, Started: b.Started.Add(4 * time.Second), Summary: "building opencore_2.1-1"},
	}
	b.Properties = map[string]string{"version": "2.1-1", "distribution": "bookworm"}
	b.Attempts = []Attempt{{N: 1, Worker: "w-deb-2", Status: StatusLost, Reason: "worker lost", Started: b.Started.Add(-time.Minute), Ended: b.Started}, {N: 2, Worker: "w-deb-1", Status: StatusRunning, Started: b.Started}}
	b.Artifacts = []Artifact{{Name: "opencore_2.1-1.dsc", Size: 1234, SHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", URL: "/api/v1/builds/12/artifacts/opencore_2.1-1.dsc"}}
	s.appendLog(running, "checkout", "$ git checkout 0123456789ab", "\x1b[32mok\x1b[0m")
	s.appendLog(running, "pbuilder", "<script>alert('log')</script> \x1b[1;31merror:\x1b[0m not really")
	s.workers = []Worker{
		{Name: "w-deb-1", Tags: []string{"debian", "amd64", "pbuilder"}, Slots: 4, Running: []int64{running}, LastHeartbeat: testNow.Add(-3 * time.Second), Connected: true, Version: "0.1.0"},
		{Name: "w-deb-2", Tags: []string{"debian", "arm64"}, Slots: 2, LastHeartbeat: testNow.Add(-10 * time.Minute), Version: "0.1.0"},
	}
	s.repos = []Repository{
		{Channel: "dev", Target: "debian/bookworm/amd64", Published: t0, Packages: []Package{{Name: "libgrace1", Version: "1.4-2", Arch: "amd64"}, {Name: "opencore", Version: "2.1-1", Arch: "amd64"}}},
		{Channel: "stable", Target: "debian/bookworm/amd64", Published: t0, Packages: []Package{{Name: "libgrace1", Version: "1.3-1", Arch: "amd64"}}},
	}
	s.config = ConfigStatus{Commit: "c0ffee0123456789", LoadedAt: t0}
	s.pollers = []Poller{
		{URL: "https://git.example.org/libgrace.git", Components: []string{"libgrace", "kiln-tools"}, Refs: 3, LastPoll: testNow.Add(-20 * time.Second), NextPoll: testNow.Add(40 * time.Second), LastChange: t0},
		{URL: "https://git.example.org/opencore.git", Components: []string{"opencore"}, LastPoll: testNow.Add(-5 * time.Second), NextPoll: testNow.Add(4 * time.Minute),
			LastError: "ls-remote: <script>alert('poll')</script>", Failures: 3},
	}
	return s
}

// largeFarm is the benchmark's farm: about 4,300 builders (70 components ×
// 63 targets less exclusions) and the given number of builds of history.
func largeFarm(nbuilds int) *testSource {
	var targets []Target
	for _, dv := range []struct {
		distro   string
		versions []string
		arches   []string
	}{
		{"debian", []string{"bullseye", "bookworm", "trixie", "forky", "sid"}, []string{"amd64", "arm64", "armhf", "i386"}},
		{"ubuntu", []string{"focal", "jammy", "noble", "plucky", "questing"}, []string{"amd64", "arm64"}},
		{"centos", []string{"8", "9", "10"}, []string{"x86_64", "aarch64", "ppc64le"}},
		{"fedora", []string{"41", "42", "43"}, []string{"x86_64", "aarch64"}},
		{"rocky", []string{"8", "9"}, []string{"x86_64", "aarch64"}},
		{"alma", []string{"9", "10"}, []string{"x86_64", "aarch64"}},
		{"opensuse", []string{"15.6", "16.0"}, []string{"x86_64", "aarch64"}},
		{"amazon", []string{"2023"}, []string{"x86_64", "aarch64"}},
		{"oracle", []string{"8", "9"}, []string{"x86_64", "aarch64"}},
	} {
		for _, v := range dv.versions {
			for _, a := range dv.arches {
				targets = append(targets, Target{dv.distro, v, a})
			}
		}
	}
	var comps []string
	for i := range 70 {
		comps = append(comps, fmt.Sprintf("component-%02d", i))
	}
	s := newTestSource(targets, comps)
	var builders []string
	for ci, c := range comps {
		for ti, t := range targets {
			name := c + "@" + t.String()
			if (ci*7+ti)%50 == 0 {
				s.noBuilder[name] = true
				continue
			}
			builders = append(builders, name)
		}
	}
	statuses := []Status{StatusSuccess, StatusSuccess, StatusSuccess, StatusSuccess, StatusFailure, StatusSuccess, StatusException, StatusSuccess, StatusCancelled, StatusSuccess}
	for i := range nbuilds {
		name := builders[(i*7919)%len(builders)]
		comp, tgt, _ := strings.Cut(name, "@")
		st := statuses[i%len(statuses)]
		if i >= nbuilds-40 {
			st = StatusRunning
		}
		s.addBuild(BuildDetail{BuildSummary: BuildSummary{Builder: name, Component: comp, Target: tgt, Revision: fmt.Sprintf("%040x", i), Status: st, Created: t0, Started: t0, Ended: t0.Add(time.Minute)}})
	}
	return s
}
