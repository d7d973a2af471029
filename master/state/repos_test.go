package state

import (
	"reflect"
	"slices"
	"testing"

	"github.com/kiln-build/kiln/protocol"
	"github.com/kiln-build/kiln/repo/pkgmeta"
)

func pkg(name, version, sha string) RepoPackage {
	return RepoPackage{Package: &pkgmeta.Package{Format: pkgmeta.Deb, Name: name, Version: version, Arch: "amd64", SHA256: sha}}
}

func listed(f *FSM, channel, target string) []string {
	var out []string
	for _, p := range f.RepoChannel(channel)[target].Packages {
		out = append(out, p.Package.Name+"="+p.Package.Version+"@"+p.Package.SHA256)
	}
	slices.Sort(out)
	return out
}

func TestPublishRecordsAddsReplacesAndRemoves(t *testing.T) {
	targets := []string{"debian/bookworm/amd64", "centos/9/x86_64"}
	tests := []struct {
		name string
		cmd  PublishCmd
		want []string // dev debian/bookworm/amd64 afterwards
	}{
		{"empty publish makes the targets", PublishCmd{Version: "v000001"}, nil},
		{"add", PublishCmd{Version: "v000002", Target: targets[0], Add: []RepoPackage{pkg("a", "1", "s1"), pkg("b", "1", "s2")}}, []string{"a=1@s1", "b=1@s2"}},
		{"newer version beside the old", PublishCmd{Version: "v000003", Target: targets[0], Add: []RepoPackage{pkg("a", "2", "s3")}}, []string{"a=1@s1", "a=2@s3", "b=1@s2"}},
		{"rebuild at the same version replaces", PublishCmd{Version: "v000004", Target: targets[0], Add: []RepoPackage{pkg("a", "2", "s4")}}, []string{"a=1@s1", "a=2@s4", "b=1@s2"}},
		{"retention removes", PublishCmd{Version: "v000005", Remove: map[string][]string{targets[0]: {"s1"}}}, []string{"a=2@s4", "b=1@s2"}},
	}
	f := NewFSM()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.cmd
			c.Channel, c.Targets, c.Time = "dev", targets, t0
			if out := apply(t, f, Command{Publish: &c}); out[0].Err != nil {
				t.Fatal(out[0].Err)
			}
			if got := listed(f, "dev", targets[0]); !slices.Equal(got, tt.want) {
				t.Errorf("listed %v, want %v", got, tt.want)
			}
			for _, target := range targets {
				if rt := f.RepoChannel("dev")[target]; rt.Version != c.Version || !rt.Published.Equal(t0) {
					t.Errorf("%s: version %q published %s, want %s at %s", target, rt.Version, rt.Published, c.Version, t0)
				}
			}
		})
	}
}

// TestPublishOfAStaleAttemptIsRefused: a build's publish belongs to its
// running attempt, like the result logged with it.
func TestPublishOfAStaleAttemptIsRefused(t *testing.T) {
	f := NewFSM()
	id := chain(t, f)[0]
	out := apply(t, f, Command{Assign: &AssignCmd{Build: id, Worker: "w1", Time: t0}})
	attempt := out[0].Attempt
	apply(t, f, Command{Cancel: &CancelCmd{Build: id, Reason: "test", Time: t0}})
	out = apply(t, f, Command{Publish: &PublishCmd{Channel: "dev", Version: "v000002", Targets: []string{"t"}, Target: "t",
		Add: []RepoPackage{pkg("a", "1", "s1")}, Build: id, Attempt: attempt, Time: t0}},
		Command{Finish: &FinishCmd{Time: t0, Result: protocol.Result{Worker: "w1", Build: FormatID(id), Attempt: attempt, Status: protocol.StatusSuccess}}})
	if !out[0].Stale {
		t.Errorf("publish outcome %+v, want stale", out[0])
	}
	if got := listed(f, "dev", "t"); len(got) != 0 {
		t.Errorf("a cancelled build's packages were recorded: %v", got)
	}
}

func TestSnapshotKeepsRepositories(t *testing.T) {
	f := NewFSM()
	apply(t, f, Command{Publish: &PublishCmd{Channel: "dev", Version: "v000002", Time: t0, Targets: []string{"t1", "t2"}, Target: "t1", Add: []RepoPackage{pkg("a", "1", "s1")}}},
		Command{Publish: &PublishCmd{Channel: "stable", Version: "v000001", Time: t0, Targets: []string{"t1"}}})
	g := restored(t, f)
	for _, ch := range []string{"dev", "stable"} {
		if a, b := f.RepoChannel(ch), g.RepoChannel(ch); len(a) == 0 || !reflect.DeepEqual(a, b) {
			t.Errorf("%s differs after restore:\n%+v\n%+v", ch, a, b)
		}
	}
}
