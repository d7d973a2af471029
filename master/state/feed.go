package state

import (
	"slices"
	"sync"
)

// Feed hands what this node's committed commands did to the parts of the
// master that react to it (metrics now; notifications and live pages next).
// It carries outcomes, which name the builds they touched, in commit order.
// Only the node that submitted a command sees its outcome, so a replayed log
// reports nothing twice. Publishing never blocks raft: each subscriber has
// its own queue and drains it at its own pace.
type Feed struct {
	mu   sync.Mutex
	subs []*Subscription
}

// Subscription is one reader of a Feed.
type Subscription struct {
	feed   *Feed
	mu     sync.Mutex
	queue  [][]Outcome
	ready  chan struct{} // one token while queue is non-empty
	closed bool
}

// Subscribe starts a subscription; Close ends it.
func (f *Feed) Subscribe() *Subscription {
	s := &Subscription{feed: f, ready: make(chan struct{}, 1)}
	f.mu.Lock()
	f.subs = append(f.subs, s)
	f.mu.Unlock()
	return s
}

func (f *Feed) publish(outs []Outcome) {
	f.mu.Lock()
	subs := f.subs
	f.mu.Unlock()
	for _, s := range subs {
		s.push(outs)
	}
}

func (s *Subscription) push(outs []Outcome) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.queue = append(s.queue, outs)
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

// Ready receives when Next has something.
func (s *Subscription) Ready() <-chan struct{} { return s.ready }

// Next takes every batch queued so far, oldest first.
func (s *Subscription) Next() [][]Outcome {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queue
	s.queue = nil
	return q
}

// Close stops deliveries, drops what is queued and leaves the feed.
func (s *Subscription) Close() {
	f := s.feed
	f.mu.Lock()
	f.subs = slices.DeleteFunc(slices.Clone(f.subs), func(x *Subscription) bool { return x == s })
	f.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed, s.queue = true, nil
}

// Events is the feed of what this node's committed commands did.
func (n *Node) Events() *Feed { return &n.events }
