package sched

import (
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// liveness is the leader's observation of its workers: who is connected,
// with which tags and slots, and which process holds each name. It is not
// replicated state: a worker's heartbeats go to whichever master leads, so a
// new leader rebuilds this from hellos and heartbeats.
type liveness struct {
	timeout time.Duration
	now     func() time.Time
	log     *slog.Logger

	mu      sync.Mutex
	workers map[string]*live
}

// live is the leader's observation of one worker.
type live struct {
	tags      map[string]bool
	slots     int
	connected bool
	draining  bool
	lastSeen  time.Time
	instance  string // of the process last admitted by Hello; empty: unknown
}

func newLiveness(timeout time.Duration, now func() time.Time, log *slog.Logger) *liveness {
	return &liveness{timeout: timeout, now: now, log: log, workers: map[string]*live{}}
}

// seed gives every worker that the state says runs builds one heartbeat
// timeout from now to show up, so a new leader neither trusts a dead worker
// forever nor declares a live one lost before it could speak.
func (l *liveness) seed(running map[string]int) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	for name, n := range running {
		if n == 0 {
			continue
		}
		if w, ok := l.workers[name]; ok {
			w.lastSeen = now
		} else {
			l.workers[name] = &live{lastSeen: now, tags: map[string]bool{}}
		}
	}
}

// claim makes instance the worker's current process unless another one has
// been heard from within the heartbeat timeout: two processes under one name
// would both take that worker's jobs. Empty instances come from older
// workers and are let in as before.
func (l *liveness) claim(name, instance string) error {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	w, ok := l.workers[name]
	if !ok {
		l.workers[name] = &live{tags: map[string]bool{}, lastSeen: now, instance: instance}
		return nil
	}
	if w.foreign(instance) && now.Sub(w.lastSeen) <= l.timeout {
		return fmt.Errorf("worker %s is already connected from another process (instance %s); stop it or use another name", name, w.instance)
	}
	w.instance = instance
	return nil
}

// foreign reports whether instance is known not to be w's current process.
func (w *live) foreign(instance string) bool {
	return instance != "" && w.instance != "" && instance != w.instance
}

// observe records that a worker spoke, with what the farm knows of it.
func (l *liveness) observe(name string, tags []string, slots int, draining bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.observeLocked(name, tags, slots, draining)
}

func (l *liveness) observeLocked(name string, tags []string, slots int, draining bool) {
	w, ok := l.workers[name]
	if !ok {
		w = &live{}
		l.workers[name] = w
	}
	// A fresh map rather than an edit: snapshots share the old one.
	w.tags = make(map[string]bool, len(tags))
	for _, t := range tags {
		w.tags[t] = true
	}
	w.slots, w.connected, w.draining, w.lastSeen = slots, true, draining, l.now()
}

// heartbeat records a heartbeat from instance unless it comes from a process
// the master refused or superseded, whose word on liveness is not this
// worker's. wasFree says whether the worker could already take jobs, so a
// caller wakes the scheduler only when capacity appeared.
func (l *liveness) heartbeat(name, instance string, tags []string, slots int, draining bool) (admitted, wasFree bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	w, ok := l.workers[name]
	if ok && w.foreign(instance) {
		return false, false
	}
	wasFree = ok && w.connected && !w.draining
	l.observeLocked(name, tags, slots, draining)
	return true, wasFree
}

// markGone stops sending to a worker that did not answer a job until it
// speaks again.
func (l *liveness) markGone(name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if w, ok := l.workers[name]; ok {
		w.connected = false
	}
}

// markBusy stops sending to a worker that refused a job until its next
// heartbeat says how it is.
func (l *liveness) markBusy(name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if w, ok := l.workers[name]; ok {
		w.draining = true
	}
}

// silent marks workers unheard of for longer than the heartbeat timeout as
// disconnected and returns every such worker, newly silent or not: the
// caller loses whatever the state still says they run.
func (l *liveness) silent() []string {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	var gone []string
	for name, w := range l.workers {
		if now.Sub(w.lastSeen) <= l.timeout {
			continue
		}
		if w.connected {
			l.log.Warn("worker silent past heartbeat timeout", "worker", name, "last_seen", w.lastSeen)
		}
		w.connected = false
		gone = append(gone, name)
	}
	return gone
}

// snapshot copies the observations so callers can combine them with state
// reads without holding the lock across both.
func (l *liveness) snapshot() map[string]live {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]live, len(l.workers))
	for name, w := range l.workers {
		out[name] = *w
	}
	return out
}
