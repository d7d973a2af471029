package master_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kiln-build/kiln/builders"
	"github.com/kiln-build/kiln/internal/kilntest"
	"github.com/kiln-build/kiln/internal/kilntest/farmtest"
	"github.com/kiln-build/kiln/master"
	"github.com/kiln-build/kiln/master/state"
	"github.com/kiln-build/kiln/protocol"
)

// BenchmarkConfigReload measures a live reload of configs/farm-large.yaml
// (4,184 builders) from a config repository served over HTTP on loopback,
// with 100 builds queued: from the master seeing a new commit to the new
// config being active (fetch, checkout, load and validate as kiln
// checkconfig does, diff, swap, pollers and webhook routes updated).
//
//	go test -run '^$' -bench ConfigReload -benchtime 20x ./master
func BenchmarkConfigReload(b *testing.B) {
	dir := b.TempDir()
	path, _ := farmtest.LargeFarm(b, dir)
	large, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	_, mx, err := builders.LoadMatrix(path)
	if err != nil {
		b.Fatal(err)
	}
	repo := kilntest.ServeGit(b).Repo("farm-config.git")
	repo.Write("kiln/farm-large.yaml", string(large))
	repo.Commit("main", "farm-large")
	m := farmtest.StartMaster(b, farmtest.DataDir(filepath.Join(dir, "data")), farmtest.MasterLogger(kilntest.QuietLogger()),
		// A bootstrap file that names nothing: the config is the
		// repository's.
		farmtest.Config("master: {}\n"),
		farmtest.MasterOptions(func(o *master.Options) {
			// The benchmark drives reloads itself; the poller only makes
			// its first-sight check.
			o.ConfigGit = builders.ConfigSource{Git: repo.URL, Branch: "main", Path: "kiln", Poll: builders.Duration(time.Hour)}
		})).Master
	ctx := context.Background()
	queue100(b, m, mx)

	// reload commits what edit writes (not timed) and times the reload.
	reload := func(b *testing.B, edit func(i int)) {
		var took []time.Duration
		for i := range b.N {
			b.StopTimer()
			edit(i)
			commit := repo.Commit("main", fmt.Sprintf("edit %d", i))
			b.StartTimer()
			start := time.Now()
			if err := m.Reload(ctx); err != nil {
				b.Fatal(err)
			}
			took = append(took, time.Since(start))
			if st := m.API().ConfigStatus(); st.Commit != commit || st.Error != nil {
				b.Fatalf("after reload: %+v", st)
			}
		}
		slices.Sort(took)
		if n, _ := m.Node().FSM.Builds(state.Filter{Status: protocol.StatusPending}); len(n) != 100 {
			b.Fatalf("%d builds queued, want 100", len(n))
		}
		b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(took[len(took)-1].Microseconds())/1000, "max-ms")
		fmt.Printf("config reload %s: farm-large.yaml, %d builders, 100 queued: p50 %s, max %s over %d reloads\n",
			b.Name(), m.API().ConfigStatus().Builders, took[len(took)/2].Round(time.Millisecond), took[len(took)-1].Round(time.Millisecond), len(took))
	}

	b.Run("one-line", func(b *testing.B) {
		reload(b, func(i int) {
			// One component's priority, back and forth: every builder of
			// it changes.
			repo.Write("kiln/farm-large.yaml", strings.Replace(string(large), "priority: 10", fmt.Sprintf("priority: %d", 11+i%2), 1))
		})
	})
	b.Run("add-builder", func(b *testing.B) {
		var extra strings.Builder
		extra.WriteString("components:\n")
		reload(b, func(i int) {
			fmt.Fprintf(&extra, "  - {name: extra%d, git: git@git.example.com:farm/extra%d.git, only: [{distro: debian, version: bookworm, arch: amd64}]}\n", i, i)
			repo.Write("kiln/extra.yaml", extra.String())
		})
	})
	b.Run("no-change", func(b *testing.B) {
		var took []time.Duration
		for range b.N {
			start := time.Now()
			if err := m.Reload(ctx); err != nil {
				b.Fatal(err)
			}
			took = append(took, time.Since(start))
		}
		slices.Sort(took)
		b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "p50-ms")
		fmt.Printf("config reload %s (fetch, nothing new): p50 %s\n", b.Name(), took[len(took)/2].Round(time.Millisecond))
	})
}

// queue100 records 100 requests of distinct builders; no worker runs them.
func queue100(b *testing.B, m *master.Master, mx *builders.Matrix) {
	force := &state.ForceCmd{Component: "queued", Reason: "benchmark queue", Time: time.Now()}
	for _, bl := range mx.Builders[:100] {
		force.Builds = append(force.Builds, state.NewBuild{Builder: bl.Name, Component: bl.Component.Name, Target: bl.Target.String(), Deps: bl.Deps, Tags: bl.Tags})
	}
	if _, err := m.Node().Apply1(context.Background(), state.Command{Force: force}); err != nil {
		b.Fatal(err)
	}
}
