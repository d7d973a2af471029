package farmtest_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/kiln-build/kiln/internal/kilntest"
	"github.com/kiln-build/kiln/internal/kilntest/farmtest"
	"github.com/kiln-build/kiln/protocol"
)

// farm is one component on one target, built by worker w1, with user ops.
const farm = `
targets:
  - {distro: debian, versions: [bookworm], arches: [amd64], kind: shell, format: apt, tags: [kit],
     steps: [{name: build, type: shell, script: "echo built"}]}
components:
  - {name: hello, git: %s}
workers:
  - {name: w1, credentials: w1.token}
users:
  - {name: ops, token: ops.token}
repos:
  channels: [{name: dev, key: demo}]
`

func farmConfig(t *testing.T) farmtest.MasterOption {
	src := kilntest.GitRepo(t)
	src.Write("VERSION", "1.0\n")
	src.Commit("main", "hello 1.0")
	return farmtest.Config(fmt.Sprintf(farm, src.Dir))
}

// connected asks the master's API whether worker name is connected.
func connected(t *testing.T, m *farmtest.Master, name string) bool {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, m.URL+"/api/v1/workers", nil)
	req.Header.Set("Authorization", "Bearer ops-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var ws []struct {
		Name      string `json:"name"`
		Connected bool   `json:"connected"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&ws) != nil {
		return false
	}
	for _, w := range ws {
		if w.Name == name {
			return w.Connected
		}
	}
	return false
}

func TestWorkerFollowsARestartingMaster(t *testing.T) {
	m := farmtest.StartMaster(t, farmConfig(t), farmtest.File("w1.token", "secret-w1\n"), farmtest.File("ops.token", "ops-token\n"))
	farmtest.StartWorker(t, m.NATSURL, "w1", "secret-w1", farmtest.Tags("kit"))
	kilntest.WaitFor(t, 10*time.Second, "w1 to connect", func() bool { return connected(t, m, "w1") })

	nats := m.NATSURL
	m.Restart()
	if m.NATSURL != nats {
		t.Fatalf("NATS moved from %s to %s over the restart", nats, m.NATSURL)
	}
	kilntest.WaitFor(t, 20*time.Second, "w1 to reconnect", func() bool { return connected(t, m, "w1") })
}

func TestMasterOnExternalNATS(t *testing.T) {
	pub, sub := protocol.WorkerPermissions("w1")
	ext := kilntest.NATS(t,
		kilntest.NATSUser{Name: "ops", Password: "ops-secret"},
		kilntest.NATSUser{Name: "w1", Password: "secret-w1", Publish: pub, Subscribe: sub, Reply: true},
	)
	m := farmtest.StartMaster(t, farmConfig(t), farmtest.ExternalNATS(ext.UserURL("ops", "ops-secret")),
		farmtest.File("w1.token", "secret-w1\n"), farmtest.File("ops.token", "ops-token\n"), farmtest.MasterLogger(kilntest.QuietLogger()))
	w := farmtest.StartWorker(t, ext.URL(), "w1", "secret-w1", farmtest.Tags("kit"))
	kilntest.WaitFor(t, 10*time.Second, "w1 to connect", func() bool { return connected(t, m, "w1") })
	if err := w.Stop(); err != nil {
		t.Errorf("stopping w1: %v", err)
	}
	select {
	case <-w.Done():
	default:
		t.Error("Done still open after Stop")
	}
}
