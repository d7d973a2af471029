package state

import "testing"

func TestChangeDeduplication(t *testing.T) {
	hook := func(provider, delivery string) *Source {
		return &Source{Kind: "webhook", Provider: provider, Delivery: delivery}
	}
	poll := &Source{Kind: "poller", Poller: "git.example.com/farm/a"}
	force := &Source{Kind: KindForce, User: "ada"}
	const main, rev1, rev2 = "refs/heads/main", "1111111111111111111111111111111111111111", "2222222222222222222222222222222222222222"
	// Each case is applied after the ones before it, on one FSM.
	steps := []struct {
		name      string
		comp, ref string
		rev       string
		src       *Source
		dup       bool
	}{
		{"first push", "a", main, rev1, hook("github", "d1"), false},
		{"the same delivery replayed", "a", main, rev1, hook("github", "d1"), true},
		{"the same delivery for another component", "b", main, rev1, hook("github", "d1"), false},
		{"the poller racing the webhook", "a", main, rev1, poll, true},
		{"another delivery id from another provider", "a", main, rev1, hook("gitea", "d1"), true},
		{"a forced rebuild of the same revision", "a", main, rev1, force, false},
		{"the next push", "a", main, rev2, poll, false},
		{"a replay of the first delivery after the branch moved", "a", main, rev1, hook("github", "d1"), true},
		{"the old revision again from a new delivery (a revert push)", "a", main, rev1, hook("github", "d9"), false},
		{"a tag at the same revision", "a", "refs/tags/v1", rev1, poll, false},
		{"no source (an old log entry)", "a", main, rev1, nil, false},
	}
	f := NewFSM()
	first := map[string]int64{}
	for _, s := range steps {
		out := apply(t, f, Command{Force: &ForceCmd{Component: s.comp, Ref: s.ref, Revision: s.rev, Source: s.src, Reason: s.name, Time: t0,
			Builds: []NewBuild{{Builder: s.comp + "@t", Component: s.comp, Target: "t"}}}})[0]
		if out.Duplicate != s.dup {
			t.Errorf("%s: duplicate = %v, want %v", s.name, out.Duplicate, s.dup)
		}
		if s.dup && (len(out.Builds) != 0 || out.Change == 0 || out.Buildset == 0) {
			t.Errorf("%s: duplicate outcome %+v, want the first change and no builds", s.name, out)
		}
		if !s.dup {
			first[s.name] = out.Change
		}
	}
	// The index survives a snapshot: a new leader refuses the same replays.
	g := restored(t, f)
	out := apply(t, g, Command{Force: &ForceCmd{Component: "b", Ref: main, Revision: rev1, Source: hook("github", "d1"), Time: t0}})[0]
	if !out.Duplicate || out.Change != first["the same delivery for another component"] {
		t.Errorf("after restore: %+v", out)
	}
	if got := g.LastRevisions([]string{"a", "b"}); got[main] != rev1 || got["refs/tags/v1"] != rev1 || len(got) != 2 {
		t.Errorf("LastRevisions = %v", got)
	}
	if got := g.LastRevisions([]string{"nosuch"}); len(got) != 0 {
		t.Errorf("LastRevisions of an unknown component = %v", got)
	}
}
