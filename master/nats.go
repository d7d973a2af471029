package master

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kiln-build/kiln/builders"
	"github.com/kiln-build/kiln/master/confsrc"
	"github.com/kiln-build/kiln/master/natsd"
	"github.com/kiln-build/kiln/protocol"
)

// MasterUser is the NATS user the master itself logs in as.
const MasterUser = "kiln-master"

// startNATS runs the embedded server with a user per configured worker, or
// dials the external cluster, and makes sure the log stream and the
// artifact store exist.
func (m *Master) startNATS(cfg *builders.Config) error {
	var opts []nats.Option
	opts = append(opts, nats.Name("kiln-master"), nats.MaxReconnects(-1))
	if m.o.NATSURL != "" {
		m.natsURL = m.o.NATSURL
	} else {
		pw, err := masterSecret(m.o.DataDir)
		if err != nil {
			return err
		}
		m.natsPassword = pw
		users, err := confsrc.NATSUsers(cfg, m.o.ConfigPath, m.natsMasterUser())
		if err != nil {
			return err
		}
		m.nats, err = natsd.Start(natsd.Options{Addr: m.o.NATSAddr, StoreDir: filepath.Join(m.o.DataDir, "nats"), Users: users, Logger: m.log})
		if err != nil {
			return fmt.Errorf("start embedded nats: %w", err)
		}
		m.natsURL = m.nats.ClientURL()
		opts = append(opts, nats.UserInfo(MasterUser, pw))
	}
	nc, err := nats.Connect(m.natsURL, opts...)
	if err != nil {
		return fmt.Errorf("connect to nats at %s: %w", m.natsURL, err)
	}
	m.nc = nc
	return m.setupJetStream()
}

func (m *Master) natsMasterUser() natsd.User {
	return natsd.User{Name: MasterUser, Password: m.natsPassword}
}

// masterSecret makes a fresh password for the master's NATS user each start
// and keeps it in the data dir, readable by the master's user only, for
// operators' tools (nats CLI) to inspect the server.
func masterSecret(dir string) (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate master nats password: %w", err)
	}
	pw := hex.EncodeToString(b)
	if err := os.WriteFile(filepath.Join(dir, "nats-master.secret"), []byte(pw+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write master nats password: %w", err)
	}
	return pw, nil
}

func (m *Master) setupJetStream() error {
	js, err := jetstream.New(m.nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	m.js = js
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: protocol.LogStream, Subjects: []string{protocol.AllLogSubjects}, Storage: jetstream.FileStorage,
	}); err != nil {
		return fmt.Errorf("create log stream %s: %w", protocol.LogStream, err)
	}
	m.objects, err = js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket: protocol.ArtifactBucket, Storage: jetstream.FileStorage, Description: "Kiln build artifacts, named by sha256",
	})
	if err != nil {
		return fmt.Errorf("create artifact store %s: %w", protocol.ArtifactBucket, err)
	}
	return nil
}

// redact drops credentials from NATS URLs for logging.
func redact(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		if u, err := url.Parse(p); err == nil && u.User != nil {
			u.User = nil
			parts[i] = u.String()
		}
	}
	return strings.Join(parts, ",")
}
