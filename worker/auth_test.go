package worker

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/kiln-build/kiln/internal/kilntest"
	"github.com/kiln-build/kiln/protocol"
)

func TestRunRefusedCredentials(t *testing.T) {
	tests := []struct {
		name  string
		perms map[string]string
		cfg   Config
	}{
		{"wrong token", map[string]string{"w1": "w1"}, Config{Name: "w1", Token: "guess"}},
		{"another worker's token", map[string]string{"w1": "w1", "w2": "w2"}, Config{Name: "w2", Token: token("w1")}},
		{"unknown worker", map[string]string{"w1": "w1"}, Config{Name: "w9", Token: token("w9")}},
		{"permissions of another worker", map[string]string{"w1": "w2"}, Config{Name: "w1", Token: token("w1")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startServerPerms(t, tt.perms)
			tt.cfg.NATSURL, tt.cfg.WorkDir, tt.cfg.Logger = s.URL(), t.TempDir(), kilntest.Logger(t)
			w, err := New(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := w.Run(ctx); !errors.Is(err, ErrAuth) {
				t.Fatalf("Run = %v, want ErrAuth", err)
			}
		})
	}
}

// One worker's NATS user can neither take another worker's jobs nor answer
// in its name.
func TestWorkerCannotActAsAnother(t *testing.T) {
	s := startServer(t, "w1", "w2")
	m := newTestMaster(t, s)
	errs := make(chan error, 10)
	nc, err := nats.Connect(s.URL(), nats.UserInfo("w1", token("w1")),
		nats.CustomInboxPrefix(protocol.InboxPrefix("w1")),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err }))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()

	tests := []struct {
		name string
		try  func() error
	}{
		{"subscribe to w2's jobs", func() error { _, err := nc.SubscribeSync(protocol.JobSubject("w2")); return err }},
		{"subscribe to every job", func() error { _, err := nc.SubscribeSync("kiln.job.*"); return err }},
		{"subscribe to w2's inbox", func() error { _, err := nc.SubscribeSync(protocol.InboxPrefix("w2") + ".>"); return err }},
		{"publish w2's result", func() error {
			return nc.Publish(protocol.ResultSubject("w2"), protocol.Encode(protocol.Result{V: 1, Worker: "w2", Build: "stolen"}))
		}},
		{"publish into w2's log", func() error { return nc.Publish(protocol.LogSubject("w2", "b"), []byte(`{}`)) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.try(); err != nil {
				t.Fatal(err)
			}
			if err := nc.Flush(); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-errs:
				if !errors.Is(err, nats.ErrPermissionViolation) {
					t.Fatalf("error %v, want a permissions violation", err)
				}
			case <-time.After(2 * time.Second):
				t.Fatal("server allowed it")
			}
		})
	}

	// Nothing w1 sent in w2's name reached the master, and w2's job reached
	// nobody: there is no one allowed to listen.
	m.mu.Lock()
	results := len(m.results)
	m.mu.Unlock()
	if results != 0 {
		t.Errorf("master received %d results from an impostor", results)
	}
	if _, err := m.nc.Request(protocol.JobSubject("w2"), protocol.Encode(protocol.Job{V: 1, Build: "b"}), time.Second); !errors.Is(err, nats.ErrNoResponders) {
		t.Errorf("job to w2 with w2 offline: %v, want no responders", err)
	}
	if info, err := m.js.Stream(context.Background(), protocol.LogStream); err != nil || info.CachedInfo().State.Msgs != 0 {
		t.Errorf("log stream holds an impostor's lines (%v)", err)
	}
}
