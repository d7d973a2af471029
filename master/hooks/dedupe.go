package hooks

import (
	"container/list"
	"context"
	"sync"
	"time"
)

// dedupe remembers recently accepted deliveries in a bounded LRU so that a
// provider's retry, or a replayed request, makes no second change. A
// delivery is only remembered once the sink accepted it: a delivery that
// failed (503) must be able to succeed on the provider's retry.
type dedupe struct {
	mu    sync.Mutex
	max   int
	ttl   time.Duration
	now   func() time.Time
	order *list.List // of *claim, most recent at the front
	byKey map[string]*list.Element
}

type claim struct {
	key  string
	at   time.Time
	done chan struct{} // closed when the owner finished
}

func newDedupe(max int, ttl time.Duration, now func() time.Time) *dedupe {
	return &dedupe{max: max, ttl: ttl, now: now, order: list.New(), byKey: make(map[string]*list.Element)}
}

// acquire returns release when the caller owns key and must process the
// delivery, or dup true when it was already accepted. A concurrent request
// for a key in flight waits for the owner's outcome, so that two copies of
// one delivery never both reach the sink and neither is answered 2xx before
// the change was really accepted.
func (d *dedupe) acquire(ctx context.Context, key string) (release func(accepted bool), dup bool, err error) {
	for {
		d.mu.Lock()
		d.expire()
		el, found := d.byKey[key]
		if !found {
			c := &claim{key: key, at: d.now(), done: make(chan struct{})}
			d.byKey[key] = d.order.PushFront(c)
			d.evict()
			d.mu.Unlock()
			return func(accepted bool) { d.release(c, accepted) }, false, nil
		}
		c := el.Value.(*claim)
		select {
		case <-c.done:
			d.mu.Unlock()
			return nil, true, nil
		default:
		}
		d.mu.Unlock()
		select {
		case <-c.done:
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
	}
}

func (d *dedupe) release(c *claim, accepted bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	// A failed claim is forgotten before waiters wake, so one of them
	// takes it over.
	if !accepted {
		if el, ok := d.byKey[c.key]; ok && el.Value == c {
			d.order.Remove(el)
			delete(d.byKey, c.key)
		}
	}
	close(c.done)
}

// evict drops the oldest finished entries beyond max. Claims in flight are
// kept: their number is bounded by the requests being served.
func (d *dedupe) evict() {
	for el := d.order.Back(); el != nil && d.order.Len() > d.max; {
		prev := el.Prev()
		if c := el.Value.(*claim); isDone(c) {
			d.order.Remove(el)
			delete(d.byKey, c.key)
		}
		el = prev
	}
}

func (d *dedupe) expire() {
	cutoff := d.now().Add(-d.ttl)
	for el := d.order.Back(); el != nil; {
		prev := el.Prev()
		c := el.Value.(*claim)
		if !c.at.Before(cutoff) {
			return
		}
		if isDone(c) {
			d.order.Remove(el)
			delete(d.byKey, c.key)
		}
		el = prev
	}
}

func isDone(c *claim) bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}
