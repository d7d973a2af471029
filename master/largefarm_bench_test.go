package master_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/kiln-build/kiln/builders"
	"github.com/kiln-build/kiln/internal/kilntest"
	"github.com/kiln-build/kiln/internal/kilntest/farmtest"
	"github.com/kiln-build/kiln/master"
)

// largeHistory is a running in-process master on configs/farm-large.yaml
// whose state holds a filled build history.
type largeHistory struct {
	mx   *builders.Matrix
	m    *master.Master
	fill time.Duration // how long recording the history through raft took
}

// startLargeHistory starts a master on a copy of configs/farm-large.yaml and
// records n completed builds through raft.
func startLargeHistory(b *testing.B, n int) largeHistory {
	dir := b.TempDir()
	cfg, mx := farmtest.LargeFarm(b, dir)
	m := farmtest.StartMaster(b, farmtest.ConfigFile(cfg), farmtest.DataDir(filepath.Join(dir, "data")), farmtest.MasterLogger(kilntest.QuietLogger())).Master
	start := time.Now()
	farmtest.FillHistory(b, m, mx, n)
	return largeHistory{mx: mx, m: m, fill: time.Since(start)}
}
