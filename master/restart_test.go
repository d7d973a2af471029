package master_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kiln-build/kiln/internal/kilntest"
	"github.com/kiln-build/kiln/internal/kilntest/farmtest"
	"github.com/kiln-build/kiln/master/api"
	"github.com/kiln-build/kiln/protocol"
)

// uploadArtifact stores data the way a worker does, with the worker's own
// NATS permissions.
func uploadArtifact(t *testing.T, w *fakeWorker, name string, data []byte) protocol.Artifact {
	t.Helper()
	js, err := jetstream.New(w.nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	obs, err := js.ObjectStore(ctx, protocol.ArtifactBucket)
	if err != nil {
		t.Fatalf("worker opens artifact store: %v", err)
	}
	sum := sha256.Sum256(data)
	a := protocol.Artifact{Name: name, Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:])}
	if _, err := obs.PutBytes(ctx, a.SHA256, data); err != nil {
		t.Fatalf("worker uploads artifact: %v", err)
	}
	return a
}

func TestRestartKeepsHistoryLogsArtifactsAndResumesQueue(t *testing.T) {
	f := newFarm(t, farmOpts{})
	w := startFakeWorker(t, f.NATSURL, "w1", []string{"debian"}, 1)
	w.hold = make(chan struct{})
	done := f.force("liba@debian/bookworm/amd64").Builds[0]
	queued := f.force("liba@centos/9/x86_64").Builds[0] // no centos worker yet
	kilntest.WaitFor(t, 5*time.Second, "debian build to run", func() bool { return f.build(done).Status == protocol.StatusRunning })

	// Not a package: packages go through publishing, which this farm lacks.
	art := uploadArtifact(t, w, "liba-1.0.tar.gz", []byte("not really a tarball"))
	b := f.build(done)
	ack := w.report(protocol.Result{V: protocol.Version, Worker: "w1", Build: itoa(done), Attempt: b.Attempt, Status: protocol.StatusSuccess,
		Artifacts: []protocol.Artifact{art}, Started: time.Now(), Ended: time.Now()})
	if !ack.OK {
		t.Fatalf("result ack: %+v", ack)
	}
	if got := f.build(done); got.Status != protocol.StatusSuccess || len(got.Artifacts) != 1 {
		t.Fatalf("before restart: %s, artifacts %v (%s)", got.Status, got.Artifacts, got.Summary)
	}
	close(w.hold)
	w.kill()
	// Force a snapshot so the restart exercises restore as well as log replay.
	if err := f.m().Node().Snapshot(); err != nil {
		t.Fatal(err)
	}
	f.Restart()
	got := f.build(done)
	if got.Status != protocol.StatusSuccess || len(got.Artifacts) != 1 || got.Artifacts[0] != api.Artifact(art) {
		t.Fatalf("after restart: %s, artifacts %v", got.Status, got.Artifacts)
	}
	resp, err := http.Get(f.url("/api/v1/builds/" + itoa(done) + "/log"))
	if err != nil {
		t.Fatal(err)
	}
	logText, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(logText), "hello from w1") {
		t.Errorf("log after restart = %q", logText)
	}
	resp, err = http.Get(f.url("/api/v1/builds/" + itoa(done) + "/artifacts/" + art.Name))
	if err != nil {
		t.Fatal(err)
	}
	content, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(content) != "not really a tarball" {
		t.Errorf("artifact after restart = %q (HTTP %d)", content, resp.StatusCode)
	}
	if q := f.build(queued); q.Status != protocol.StatusPending {
		t.Fatalf("queued request after restart: %s", q.Status)
	}
	startFakeWorker(t, f.NATSURL, "w2", []string{"centos"}, 1)
	if q := f.waitFinished(5*time.Second, queued)[0]; q.Status != protocol.StatusSuccess || q.Worker != "w2" {
		t.Fatalf("queued request resumed as %s on %s", q.Status, q.Worker)
	}
}

func TestResultNamingMissingArtifactIsAnException(t *testing.T) {
	f := newFarm(t, farmOpts{})
	w := startFakeWorker(t, f.NATSURL, "w1", []string{"debian"}, 1)
	w.hold = make(chan struct{})
	id := f.force("liba@debian/bookworm/amd64").Builds[0]
	kilntest.WaitFor(t, 5*time.Second, "build to run", func() bool { return f.build(id).Status == protocol.StatusRunning })
	bogus := protocol.Artifact{Name: "ghost.deb", Size: 3, SHA256: strings.Repeat("ab", 32)}
	w.report(protocol.Result{V: protocol.Version, Worker: "w1", Build: itoa(id), Attempt: 1, Status: protocol.StatusSuccess, Artifacts: []protocol.Artifact{bogus}, Ended: time.Now()})
	if b := f.build(id); b.Status != protocol.StatusException || !strings.Contains(b.Summary, "ghost.deb") {
		t.Fatalf("build with missing artifact: %s %q", b.Status, b.Summary)
	}
	close(w.hold)
}

func TestExternalNATSCluster(t *testing.T) {
	pub, sub := protocol.WorkerPermissions("w1")
	ext := kilntest.NATS(t,
		kilntest.NATSUser{Name: "ops", Password: "ops-secret"},
		kilntest.NATSUser{Name: "w1", Password: "secret-w1", Publish: pub, Subscribe: sub, Reply: true},
	)
	f := newFarm(t, farmOpts{}, farmtest.ExternalNATS(ext.UserURL("ops", "ops-secret")))
	if _, err := os.Stat(filepath.Join(f.DataDir, "nats")); !os.IsNotExist(err) {
		t.Errorf("an external cluster must not get an embedded server's store: %v", err)
	}
	// The worker dials the cluster as itself, not with the master's login.
	w := startFakeWorker(t, ext.URL(), "w1", []string{"debian"}, 1)
	id := f.force("liba@debian/bookworm/amd64").Builds[0]
	if b := f.waitFinished(10*time.Second, id)[0]; b.Status != protocol.StatusSuccess || b.Worker != "w1" {
		t.Fatalf("build over the external cluster: %s on %s", b.Status, b.Worker)
	}
	art := uploadArtifact(t, w, "x.deb", []byte("payload"))
	if art.Size != 7 {
		t.Fatal(art)
	}
}
