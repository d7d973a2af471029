package master_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kiln-build/kiln/master/api"
	"github.com/kiln-build/kiln/protocol"
)

func TestForcedChainBuildsInOrderOnMatchingWorkers(t *testing.T) {
	f := newFarm(t, farmOpts{})
	startFakeWorker(t, f, "w1", []string{"debian"}, 2)
	startFakeWorker(t, f, "w2", []string{"centos"}, 2)

	res := f.force("liba")
	if len(res.Builds) != 6 {
		t.Fatalf("force liba (transitive) made %d builds, want 6", len(res.Builds))
	}
	builds := f.waitFinished(10*time.Second, res.Builds...)
	byBuilder := map[string]int{}
	for i, b := range builds {
		byBuilder[b.Builder] = i
		if b.Status != protocol.StatusSuccess {
			t.Errorf("%s: %s (%s)", b.Builder, b.Status, b.Summary)
		}
		want := map[string]string{"debian/bookworm/amd64": "w1", "centos/9/x86_64": "w2"}[b.Target]
		if b.Worker != want {
			t.Errorf("%s ran on %s, want %s", b.Builder, b.Worker, want)
		}
	}
	for _, tgt := range []string{"debian/bookworm/amd64", "centos/9/x86_64"} {
		chain := []string{"liba@" + tgt, "libb@" + tgt, "app@" + tgt}
		for i := 1; i < len(chain); i++ {
			dep, b := builds[byBuilder[chain[i-1]]], builds[byBuilder[chain[i]]]
			if !b.Started.After(dep.Ended) && !b.Started.Equal(dep.Ended) {
				t.Errorf("%s started %s, before its dependency %s ended %s", b.Builder, b.Started, dep.Builder, dep.Ended)
			}
		}
	}
}

func TestForceUnknownComponentIsAClearError(t *testing.T) {
	f := newFarm(t, farmOpts{})
	for _, tc := range []struct {
		component string
		code      int
		mention   string
	}{
		{"nosuch", http.StatusNotFound, `"nosuch"`},
		{"liba@plan9/4/mips", http.StatusNotFound, "plan9/4/mips"},
		{"", http.StatusBadRequest, "no component"},
	} {
		var e api.Error
		code := f.call("POST", "/api/v1/force", api.ForceRequest{Component: tc.component}, &e)
		if code != tc.code || !strings.Contains(e.Error, tc.mention) {
			t.Errorf("force %q: HTTP %d %q, want %d mentioning %s", tc.component, code, e.Error, tc.code, tc.mention)
		}
	}
	if n := len(f.m.Changes(0)); n != 0 {
		t.Errorf("bad forces recorded %d changes", n)
	}
}
