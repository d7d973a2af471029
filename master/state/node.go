package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// NodeOptions configure the raft node.
type NodeOptions struct {
	Dir    string // raft's directory: log store, snapshots, node id
	Addr   string // raft TCP bind address; "" means 127.0.0.1:0
	Logger *slog.Logger
}

// Node is one raft member holding the FSM. Commands submitted concurrently
// are batched into one log entry, so a burst of worker messages costs one
// disk sync rather than one each.
type Node struct {
	FSM    *FSM
	raft   *raft.Raft
	store  *raftboltdb.BoltStore
	trans  *raft.NetworkTransport
	log    *slog.Logger
	events Feed
	submit chan applyReq
	stop   chan struct{}
	wg     sync.WaitGroup
}

type applyReq struct {
	cmds []Command
	done chan applyResp
}

type applyResp struct {
	out []Outcome
	err error
}

const maxBatch = 512

// Open starts the raft node, bootstrapping a one-node cluster on first start.
func Open(o NodeOptions) (*Node, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("create raft dir: %w", err)
	}
	id, err := nodeID(o.Dir)
	if err != nil {
		return nil, err
	}
	addr := o.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	cfg := raft.DefaultConfig()
	cfg.LocalID = raft.ServerID(id)
	cfg.Logger = hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Warn, Output: hclogWriter{o.Logger}})
	// A one-node cluster elects itself; short timeouts make startup quick.
	cfg.HeartbeatTimeout = 500 * time.Millisecond
	cfg.ElectionTimeout = 500 * time.Millisecond
	cfg.LeaderLeaseTimeout = 250 * time.Millisecond
	cfg.BatchApplyCh = true

	store, err := raftboltdb.NewBoltStore(filepath.Join(o.Dir, "raft.db"))
	if err != nil {
		return nil, fmt.Errorf("open raft log store: %w", err)
	}
	snaps, err := raft.NewFileSnapshotStore(o.Dir, 2, hclogWriter{o.Logger})
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("open raft snapshot store: %w", err)
	}
	trans, err := raft.NewTCPTransport(addr, nil, 3, 10*time.Second, hclogWriter{o.Logger})
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("raft transport on %s: %w", addr, err)
	}
	fsm := NewFSM()
	r, err := raft.NewRaft(cfg, fsm, store, store, snaps, trans)
	if err != nil {
		trans.Close()
		store.Close()
		return nil, fmt.Errorf("start raft: %w", err)
	}
	n := &Node{FSM: fsm, raft: r, store: store, trans: trans, log: o.Logger, submit: make(chan applyReq, 1024), stop: make(chan struct{})}
	has, err := raft.HasExistingState(store, store, snaps)
	if err != nil {
		n.Close()
		return nil, fmt.Errorf("inspect raft state: %w", err)
	}
	if !has {
		boot := raft.Configuration{Servers: []raft.Server{{ID: cfg.LocalID, Address: trans.LocalAddr()}}}
		if err := r.BootstrapCluster(boot).Error(); err != nil {
			n.Close()
			return nil, fmt.Errorf("bootstrap raft cluster: %w", err)
		}
	} else if err := n.readvertise(cfg.LocalID, trans.LocalAddr()); err != nil {
		n.Close()
		return nil, err
	}
	n.wg.Add(1)
	go n.applier()
	return n, nil
}

// readvertise fixes a one-node cluster's own address after a restart on a
// different port (tests and operators using port 0): without it the node
// would keep advertising a port nobody listens on.
func (n *Node) readvertise(id raft.ServerID, addr raft.ServerAddress) error {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return fmt.Errorf("read raft configuration: %w", err)
	}
	servers := f.Configuration().Servers
	if len(servers) != 1 || servers[0].ID != id || servers[0].Address == addr {
		return nil
	}
	select {
	case <-time.After(10 * time.Second):
		return fmt.Errorf("raft: no leadership 10s after restart")
	case <-n.waitLeader():
	}
	if err := n.raft.AddVoter(id, addr, 0, 5*time.Second).Error(); err != nil {
		return fmt.Errorf("update raft address: %w", err)
	}
	return nil
}

func (n *Node) waitLeader() <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		for n.raft.State() != raft.Leader && n.raft.State() != raft.Shutdown {
			time.Sleep(10 * time.Millisecond)
		}
	}()
	return ch
}

func nodeID(dir string) (string, error) {
	p := filepath.Join(dir, "node-id")
	b, err := os.ReadFile(p)
	if err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read raft node id: %w", err)
	}
	host, _ := os.Hostname()
	id := fmt.Sprintf("%s-%d", host, time.Now().UnixNano())
	if err := os.WriteFile(p, []byte(id+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write raft node id: %w", err)
	}
	return id, nil
}

// Addr is the raft transport's address.
func (n *Node) Addr() string { return string(n.trans.LocalAddr()) }

// LeaderCh reports leadership gained (true) and lost (false).
func (n *Node) LeaderCh() <-chan bool { return n.raft.LeaderCh() }

// IsLeader reports whether this node leads.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// Snapshot forces a raft snapshot (tests and operators before a backup).
func (n *Node) Snapshot() error {
	if err := n.raft.Snapshot().Error(); err != nil {
		return fmt.Errorf("raft snapshot: %w", err)
	}
	return nil
}

// Apply submits commands and waits until they are committed and applied.
func (n *Node) Apply(ctx context.Context, cmds ...Command) ([]Outcome, error) {
	req := applyReq{cmds: cmds, done: make(chan applyResp, 1)}
	select {
	case n.submit <- req:
	case <-n.stop:
		return nil, fmt.Errorf("apply: %w", raft.ErrRaftShutdown)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case r := <-req.done:
		return r.out, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Apply1 applies one command and returns its outcome, with the outcome's
// refusal as the error.
func (n *Node) Apply1(ctx context.Context, c Command) (Outcome, error) {
	out, err := n.Apply(ctx, c)
	if err != nil {
		return Outcome{}, err
	}
	return out[0], out[0].Err
}

func (n *Node) applier() {
	defer n.wg.Done()
	for {
		var batch []applyReq
		select {
		case <-n.stop:
			return
		case r := <-n.submit:
			batch = append(batch, r)
		}
		count := len(batch[0].cmds)
	drain:
		for count < maxBatch {
			select {
			case r := <-n.submit:
				batch = append(batch, r)
				count += len(r.cmds)
			default:
				break drain
			}
		}
		n.applyBatch(batch, count)
	}
}

func (n *Node) applyBatch(batch []applyReq, count int) {
	e := entry{V: EntryVersion, Cmds: make([]Command, 0, count)}
	for _, r := range batch {
		e.Cmds = append(e.Cmds, r.cmds...)
	}
	data, err := json.Marshal(e)
	var out []Outcome
	if err == nil {
		f := n.raft.Apply(data, 10*time.Second)
		if err = f.Error(); err == nil {
			switch resp := f.Response().(type) {
			case []Outcome:
				out = resp
			case error:
				err = resp
			}
		}
	}
	if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
		err = fmt.Errorf("%w: %w", ErrNotLeader, err)
	}
	if err == nil {
		n.events.publish(out)
	}
	for _, r := range batch {
		if err != nil {
			r.done <- applyResp{err: fmt.Errorf("raft apply: %w", err)}
			continue
		}
		r.done <- applyResp{out: out[:len(r.cmds)]}
		out = out[len(r.cmds):]
	}
}

// Close stops the node. Pending submissions fail with raft.ErrRaftShutdown.
func (n *Node) Close() error {
	select {
	case <-n.stop:
	default:
		close(n.stop)
	}
	n.wg.Wait()
	err := n.raft.Shutdown().Error()
	n.trans.Close()
	if cerr := n.store.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("shut raft down: %w", err)
	}
	return nil
}

// hclogWriter sends raft's own log lines to slog.
type hclogWriter struct{ l *slog.Logger }

func (w hclogWriter) Write(p []byte) (int, error) {
	w.l.Info(strings.TrimSpace(string(p)), "component", "raft")
	return len(p), nil
}

var _ io.Writer = hclogWriter{}

// Barrier waits until every entry committed before it is applied to this
// node's FSM. A new leader calls it before its leader-only services read
// state.
func (n *Node) Barrier(timeout time.Duration) error {
	if err := n.raft.Barrier(timeout).Error(); err != nil {
		return fmt.Errorf("raft barrier: %w", err)
	}
	return nil
}
