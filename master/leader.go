package master

import (
	"context"
	"sync"
	"time"
)

// leaderServices is the one list of what runs only on the raft leader: the
// scheduler (two would hand one slot out twice), the pollers (two would
// report every push twice) and the publisher (two would race to switch a
// channel). Later: the notifier and retention.
func (m *Master) leaderServices() []func(context.Context) {
	return []func(context.Context){
		func(ctx context.Context) { _ = m.sched.Run(ctx) },
		m.intake.RunPollers,
		m.publish.Maintain,
	}
}

// barrierTimeout bounds the wait for a new leader's FSM to catch up.
const barrierTimeout = 30 * time.Second

// lead starts the leader services when this node becomes leader and stops
// them the moment it is not. They start only after a raft barrier: until
// every entry an earlier leader committed is applied here, this node's FSM
// may lack builds it would otherwise dispatch twice or requeue wrongly.
func (m *Master) lead(ctx context.Context) {
	var (
		cancel context.CancelFunc
		done   chan struct{}
	)
	stop := func() {
		if cancel != nil {
			cancel()
			<-done
			cancel = nil
		}
	}
	start := func() {
		if cancel != nil {
			return
		}
		var lctx context.Context
		lctx, cancel = context.WithCancel(ctx)
		done = make(chan struct{})
		go func() {
			defer close(done)
			if err := m.node.Barrier(barrierTimeout); err != nil {
				// Leadership was lost or raft is shutting down; LeaderCh
				// says which, and a new term starts over.
				m.log.Warn("leading: barrier failed, leader services not started", "err", err)
				return
			}
			if lctx.Err() != nil {
				return
			}
			var wg sync.WaitGroup
			for _, run := range m.leaderServices() {
				wg.Go(func() { run(lctx) })
			}
			m.log.Info("leading: leader services started")
			wg.Wait()
		}()
	}
	if m.node.IsLeader() {
		start()
	}
	for {
		select {
		case <-ctx.Done():
			stop()
			return
		case isLeader := <-m.node.LeaderCh():
			if isLeader {
				start()
			} else {
				stop()
				m.log.Warn("lost leadership: leader services stopped")
			}
		}
	}
}
