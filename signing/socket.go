package signing

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ListenSocket creates the agent's Unix socket at path with mode 0600. It
// refuses a directory that group or others may write (they could swap the
// socket) and a path that exists, unless it is a socket nobody listens on
// (left by a crash), which it replaces.
func ListenSocket(path string) (*SocketListener, error) {
	dir := filepath.Dir(path)
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	if st.Mode().Perm()&0o022 != 0 {
		return nil, fmt.Errorf("listen on %s: directory %s has mode %04o; it must not be group- or world-writable", path, dir, st.Mode().Perm())
	}
	if err := removeStaleSocket(path); err != nil {
		return nil, err
	}
	// Bind in a private directory and rename into place, so the socket is
	// never reachable before its mode is 0600.
	tmpDir, err := os.MkdirTemp(dir, ".kiln-signer-")
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	defer os.RemoveAll(tmpDir)
	tmp := filepath.Join(tmpDir, "s")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	ln.SetUnlinkOnClose(false)
	if err := os.Chmod(tmp, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		ln.Close()
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	return &SocketListener{UnixListener: ln, path: path}, nil
}

// SocketListener is the agent's listening socket. Its net address is the
// temporary name it was bound under; Path is where clients find it.
type SocketListener struct {
	*net.UnixListener
	path string
}

// Path is the socket's file name.
func (l *SocketListener) Path() string { return l.path }

func removeStaleSocket(path string) error {
	st, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("listen on %s: %w", path, err)
	}
	if st.Mode().Type() != os.ModeSocket {
		return fmt.Errorf("listen on %s: path exists and is not a socket; refusing to replace it", path)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("listen on %s: another signer is listening there", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("listen on %s: existing socket: %w", path, err)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("listen on %s: remove stale socket: %w", path, err)
	}
	return nil
}

// SocketServer serves an Agent on a Unix socket to peers whose uid is on
// the allowlist.
type SocketServer struct {
	Agent *Agent
	// AllowUIDs are the peer uids let in; empty means DefaultAllowUIDs.
	AllowUIDs []uint32
	Logger    *slog.Logger
}

// DefaultAllowUIDs is the signer's own uid and root.
func DefaultAllowUIDs() []uint32 { return []uint32{uint32(os.Getuid()), 0} }

// Serve accepts connections until ctx ends, then closes the listener and
// every connection, waits for their goroutines and removes the socket.
func (s *SocketServer) Serve(ctx context.Context, ln *SocketListener) error {
	log := s.Logger
	if log == nil {
		log = slog.Default()
	}
	path := ln.Path()
	log = log.With("component", "signer", "socket", path)
	allow := s.AllowUIDs
	if len(allow) == 0 {
		allow = DefaultAllowUIDs()
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns = map[*net.UnixConn]struct{}{}
	)
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var err error
	for {
		c, aerr := ln.AcceptUnix()
		if aerr != nil {
			if ctx.Err() == nil {
				err = fmt.Errorf("accept on %s: %w", path, aerr)
			}
			break
		}
		mu.Lock()
		conns[c] = struct{}{}
		mu.Unlock()
		wg.Go(func() {
			defer func() {
				mu.Lock()
				delete(conns, c)
				mu.Unlock()
				c.Close()
			}()
			s.serveConn(ctx, log, c, allow)
		})
	}
	ln.Close()
	mu.Lock()
	for c := range conns {
		c.Close()
	}
	mu.Unlock()
	wg.Wait()
	if rerr := os.Remove(path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) && err == nil {
		err = fmt.Errorf("remove socket: %w", rerr)
	}
	return err
}

func (s *SocketServer) serveConn(ctx context.Context, log *slog.Logger, c *net.UnixConn, allow []uint32) {
	uid, err := peerUID(c)
	if err != nil {
		log.Warn("peer credentials unavailable; connection dropped", "err", err)
		return
	}
	if !slices.Contains(allow, uid) {
		log.Warn("peer refused: uid not on the allowlist", "uid", uid)
		writeFrame(c, errorReply(fmt.Errorf("%w: peer uid %d is not on the signer's allowlist", ErrDenied, uid)))
		return
	}
	who := UIDIdentity(uid)
	for {
		msg, err := readFrame(c, s.Agent.MaxMessageBytes())
		if err != nil {
			if errors.Is(err, ErrTooLarge) {
				writeFrame(c, errorReply(err))
			} else if !errors.Is(err, io.EOF) && ctx.Err() == nil {
				log.Debug("connection ended", "uid", uid, "err", err)
			}
			return
		}
		out := s.Agent.Handle(ctx, who, msg, true)
		clear(msg) // may hold a passphrase
		if err := writeFrame(c, out); err != nil {
			return
		}
	}
}

func peerUID(c *net.UnixConn) (uint32, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, fmt.Errorf("peer credentials: %w", err)
	}
	var cred *unix.Ucred
	var serr error
	if err := raw.Control(func(fd uintptr) {
		cred, serr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return 0, fmt.Errorf("peer credentials: %w", err)
	}
	if serr != nil {
		return 0, fmt.Errorf("peer credentials: %w", serr)
	}
	return cred.Uid, nil
}

func readFrame(r io.Reader, limit int) ([]byte, error) {
	var n [4]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return nil, err
	}
	size := int(binary.BigEndian.Uint32(n[:]))
	if size > limit {
		return nil, fmt.Errorf("%w: message of %d bytes, limit %d", ErrTooLarge, size, limit)
	}
	buf := make([]byte, size)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, fmt.Errorf("read message: %w", err)
	}
	return buf, nil
}

func writeFrame(w io.Writer, msg []byte) error {
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(msg)))
	bufs := net.Buffers{n[:], msg}
	if _, err := bufs.WriteTo(w); err != nil {
		return fmt.Errorf("write message: %w", err)
	}
	return nil
}
