package master_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kiln-build/kiln/master/api"
	"github.com/kiln-build/kiln/master/hooks"
	"github.com/kiln-build/kiln/master/intake"
	"github.com/kiln-build/kiln/protocol"
)

func TestForcedChainBuildsInOrderOnMatchingWorkers(t *testing.T) {
	f := newFarm(t, farmOpts{})
	startFakeWorker(t, f.NATSURL, "w1", []string{"debian"}, 2)
	startFakeWorker(t, f.NATSURL, "w2", []string{"centos"}, 2)

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
	if _, n := f.api().Changes(api.ChangeFilter{}); n != 0 {
		t.Errorf("bad forces recorded %d changes", n)
	}
}

func TestWebhookAndPollerChangesBecomeBuildsets(t *testing.T) {
	f := newFarm(t, farmOpts{})
	c := hooks.Change{Component: "libb", Branch: "main", Revision: "0123abcd", Source: hooks.Source{Kind: hooks.KindWebhook, Provider: "gitea", User: "ada"}}
	if err := f.m().Intake().Submit(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	changes, _ := f.api().Changes(api.ChangeFilter{Limit: 1})
	if len(changes) != 1 || changes[0].Revision != "0123abcd" || changes[0].Reason != "webhook from gitea by ada on main" {
		t.Fatalf("changes = %+v", changes)
	}
	builds, total := f.api().Builds(api.BuildFilter{Buildset: changes[0].Buildset})
	if total != 4 || builds[0].Revision != "0123abcd" { // libb and its dependent app, on both targets
		t.Fatalf("buildset of libb: %d builds %+v", total, builds)
	}
	c.Component = "nosuch"
	if err := f.m().Intake().Submit(context.Background(), c); !errors.Is(err, intake.ErrUnknownComponent) {
		t.Errorf("unknown component: %v", err)
	}
}

func TestOtherRoutesShareTheMastersMux(t *testing.T) {
	f := newFarm(t, farmOpts{})
	// An embedder's route, beside the master's own under /hooks/.
	f.m().Mux().HandleFunc("GET /hooks/ping", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "pong") })
	if _, body := f.get("/hooks/ping"); body != "pong" {
		t.Errorf("/hooks/ping = %q", body)
	}
	if code := f.call("GET", "/api/v1/workers", nil, nil); code != http.StatusOK {
		t.Errorf("/api/v1/workers: HTTP %d", code)
	}
}
