// Package natsd runs the NATS server embedded in the master: JetStream on,
// stored under the master's data dir, one user per worker with only the
// subjects protocol.WorkerPermissions grants, and a full-permission user for
// the master itself.
package natsd

import (
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// User is a NATS login. Nil Publish and Subscribe grant everything.
type User struct {
	Name      string
	Password  string
	Publish   []string
	Subscribe []string
}

// Options configure the embedded server.
type Options struct {
	Addr     string // host:port; port 0 picks a free one
	StoreDir string // JetStream storage
	Users    []User
	Logger   *slog.Logger
}

// Server is a running embedded NATS server.
type Server struct {
	s *server.Server

	mu   sync.Mutex // serialises SetUsers
	opts *server.Options
}

// Start runs the server and waits until it accepts connections.
func Start(o Options) (*Server, error) {
	host, portS, err := net.SplitHostPort(o.Addr)
	if err != nil {
		return nil, fmt.Errorf("nats listen address %q: %w", o.Addr, err)
	}
	port, err := strconv.Atoi(portS)
	if err != nil {
		return nil, fmt.Errorf("nats listen address %q: bad port", o.Addr)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	if host == "" {
		host = "0.0.0.0"
	}
	opts := &server.Options{
		ServerName: "kiln-master",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   o.StoreDir,
		NoSigs:     true,
		// Build logs and artifacts chunks are small, but a job carrying many
		// steps must fit.
		MaxPayload: 8 << 20,
	}
	opts.Users = serverUsers(o.Users)
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("configure nats server: %w", err)
	}
	if o.Logger != nil {
		s.SetLoggerV2(slogAdapter{o.Logger.With("component", "nats")}, false, false, false)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("nats server on %s: not ready after 10s", o.Addr)
	}
	return &Server{s: s, opts: opts}, nil
}

func serverUsers(us []User) []*server.User {
	out := make([]*server.User, 0, len(us))
	for _, u := range us {
		su := &server.User{Username: u.Name, Password: u.Password}
		if u.Publish != nil || u.Subscribe != nil {
			su.Permissions = &server.Permissions{
				Publish:   &server.SubjectPermission{Allow: u.Publish},
				Subscribe: &server.SubjectPermission{Allow: u.Subscribe},
				// Workers answer the master's requests (jobs, hello replies
				// come the other way) on whatever reply subject it chose.
				Response: &server.ResponsePermission{MaxMsgs: 1, Expires: time.Minute},
			}
		}
		out = append(out, su)
	}
	return out
}

// ClientURL is the address clients dial.
func (s *Server) ClientURL() string { return s.s.ClientURL() }

// Addr is the listening address.
func (s *Server) Addr() net.Addr { return s.s.Addr() }

// Shutdown stops the server and waits for it.
func (s *Server) Shutdown() {
	s.s.Shutdown()
	s.s.WaitForShutdown()
}

type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Noticef(format string, v ...any) { a.l.Debug(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Warnf(format string, v ...any)   { a.l.Warn(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Fatalf(format string, v ...any)  { a.l.Error(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Errorf(format string, v ...any)  { a.l.Error(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Debugf(format string, v ...any)  { a.l.Debug(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Tracef(format string, v ...any)  { a.l.Debug(fmt.Sprintf(format, v...)) }
