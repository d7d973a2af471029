package kilntest

import (
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// NATSUser is a login on a NATSServer. A user with no Publish, Subscribe
// or Deny lists may do everything, like the master's own user.
type NATSUser struct {
	Name     string
	Password string
	// Publish and Subscribe are the subjects the user may use;
	// DenyPublish and DenySubscribe take subjects away again.
	Publish, Subscribe         []string
	DenyPublish, DenySubscribe []string
	// Reply lets the user answer a request on its reply subject even
	// where Publish does not reach: workers answer jobs and the signing
	// agent answers signing requests that way.
	Reply bool
}

// NATSServer is an in-process NATS server with JetStream on loopback.
type NATSServer struct {
	t    testing.TB
	opts *server.Options
	srv  *server.Server
}

// NATS starts a server that the test's cleanup shuts down. Without users
// anyone may connect and do anything; with users only they may.
func NATS(t testing.TB, users ...NATSUser) *NATSServer {
	t.Helper()
	s := &NATSServer{t: t, opts: &server.Options{
		Host:      "127.0.0.1",
		Port:      server.RANDOM_PORT,
		JetStream: true,
		StoreDir:  t.TempDir(),
		NoLog:     true,
		NoSigs:    true,
		// As the master's embedded server: jobs with many steps are big.
		MaxPayload: 8 << 20,
		Users:      serverUsers(users),
	}}
	s.start()
	t.Cleanup(s.shutdown)
	return s
}

func serverUsers(users []NATSUser) []*server.User {
	var out []*server.User
	for _, u := range users {
		su := &server.User{Username: u.Name, Password: u.Password}
		if u.Publish != nil || u.Subscribe != nil || u.DenyPublish != nil || u.DenySubscribe != nil || u.Reply {
			su.Permissions = &server.Permissions{
				Publish:   &server.SubjectPermission{Allow: u.Publish, Deny: u.DenyPublish},
				Subscribe: &server.SubjectPermission{Allow: u.Subscribe, Deny: u.DenySubscribe},
			}
			if u.Reply {
				// The limits the master's embedded server gives workers.
				su.Permissions.Response = &server.ResponsePermission{MaxMsgs: 1, Expires: time.Minute}
			}
		}
		out = append(out, su)
	}
	return out
}

func (s *NATSServer) start() {
	s.t.Helper()
	// On a restart the old port can be taken for a moment, e.g. by a
	// reconnecting client the kernel connected to itself: retry.
	for range 20 {
		srv, err := server.NewServer(s.opts)
		if err != nil {
			s.t.Fatalf("configure nats server: %v", err)
		}
		go srv.Start()
		if srv.ReadyForConnections(5 * time.Second) {
			s.srv = srv
			s.opts.Port = srv.Addr().(*net.TCPAddr).Port
			return
		}
		srv.Shutdown()
		srv.WaitForShutdown()
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatal("nats server not ready")
}

func (s *NATSServer) shutdown() {
	s.srv.Shutdown()
	s.srv.WaitForShutdown()
}

// URL is the address clients dial, without credentials.
func (s *NATSServer) URL() string { return s.srv.ClientURL() }

// UserURL is URL with user's credentials in it, for clients such as the
// master that take a URL only.
func (s *NATSServer) UserURL(user, password string) string {
	u, err := url.Parse(s.URL())
	if err != nil {
		s.t.Fatal(err)
	}
	u.User = url.UserPassword(user, password)
	return u.String()
}

// Restart stops the server and starts it again on the same port and
// store, as when a master restarts: every client is cut off and has to
// reconnect.
func (s *NATSServer) Restart() {
	s.t.Helper()
	s.shutdown()
	s.start()
}

// Connect dials the server as user (no credentials when user is empty);
// the connection closes when the test ends.
func (s *NATSServer) Connect(user, password string, opts ...nats.Option) *nats.Conn {
	s.t.Helper()
	if user != "" {
		opts = append([]nats.Option{nats.UserInfo(user, password)}, opts...)
	}
	nc, err := nats.Connect(s.URL(), opts...)
	if err != nil {
		s.t.Fatalf("connect to nats as %q: %v", user, err)
	}
	s.t.Cleanup(nc.Close)
	return nc
}
