package view

import (
	"maps"
	"slices"

	"github.com/kiln-build/kiln/master/api"
	"github.com/kiln-build/kiln/master/poller"
	"github.com/kiln-build/kiln/master/sched"
	"github.com/kiln-build/kiln/master/state"
)

// The conversions from raft records to the API's types. Each copies, so a
// caller may keep or change what it gets.

// each converts a list; the result is never nil, so an empty list encodes
// as [] like the API documents.
func each[S, T any](in []S, conv func(S) T) []T {
	out := make([]T, len(in))
	for i, x := range in {
		out[i] = conv(x)
	}
	return out
}

func apiBuild(b *state.Build) *api.Build {
	out := &api.Build{ID: b.ID, Buildset: b.Buildset, Change: b.Change, Builder: b.Builder, Component: b.Component, Target: b.Target,
		Revision: b.Revision, Deps: slices.Clone(b.Deps), Tags: slices.Clone(b.Tags), Priority: b.Priority, Collapse: b.Collapse,
		Status: b.Status, Summary: b.Summary, SupersededBy: b.SupersededBy, Created: b.Created, Started: b.Started, Ended: b.Ended,
		Worker: b.Worker, Attempt: b.Attempt, Properties: maps.Clone(b.Properties)}
	for _, a := range b.Attempts {
		out.Attempts = append(out.Attempts, api.Attempt(a))
	}
	for _, s := range b.Steps {
		out.Steps = append(out.Steps, api.Step(s))
	}
	for _, a := range b.Artifacts {
		out.Artifacts = append(out.Artifacts, api.Artifact(a))
	}
	return out
}

func apiChange(c *state.Change) *api.Change {
	out := &api.Change{ID: c.ID, Component: c.Component, Target: c.Target, Revision: c.Revision, Ref: c.Ref,
		Reason: c.Reason, Created: c.Created, Buildset: c.Buildset}
	if c.Source != nil {
		s := api.Source(*c.Source)
		out.Source = &s
	}
	return out
}

func apiWorker(w sched.WorkerStatus) api.Worker {
	return api.Worker{Name: w.Name, Tags: slices.Clone(w.Tags), Slots: w.Slots, KilnVersion: w.KilnVersion, Protocol: w.Protocol,
		LastHello: w.LastHello, Connected: w.Connected, Draining: w.Draining, LastSeen: w.LastSeen, Running: slices.Clone(w.Running), Free: w.Free}
}

func apiPoller(p poller.Status) api.Poller {
	return api.Poller{URL: p.URL, Key: p.Key, Components: p.Components, Refs: p.Refs, LastPoll: p.LastPoll, NextPoll: p.NextPoll,
		LastChange: p.LastChange, LastError: p.LastError, Failures: p.Failures, Polls: p.Polls}
}
