package state

// Source says where a change came from. It is recorded with the change so
// that every build can be traced back to a webhook delivery, a poller or a
// user.
type Source struct {
	Kind     string `json:"kind"`               // webhook, poller or force
	Provider string `json:"provider,omitempty"` // webhook provider
	Delivery string `json:"delivery,omitempty"` // the provider's delivery id
	User     string `json:"user,omitempty"`     // who pushed or forced
	Poller   string `json:"poller,omitempty"`   // repository key of the poller
}

// KindForce is the Source.Kind of a change a user forced; forced changes
// are never taken for duplicates, since forcing the same revision again is
// the point.
const KindForce = "force"

// intakeIndex finds changes that repeat one already recorded. It lives in
// the FSM rather than in the webhook handler or the poller because only the
// replicated state is shared by every source and survives a leader change.
type intakeIndex struct {
	// deliveries: provider, delivery id and component → change.
	deliveries map[string]int64
	// last: component and ref → the newest change recorded for it.
	last map[string]*Change
}

func newIntakeIndex() intakeIndex {
	return intakeIndex{deliveries: map[string]int64{}, last: map[string]*Change{}}
}

func deliveryKey(s *Source, component string) string {
	return s.Provider + "\x00" + s.Delivery + "\x00" + component
}

func refKey(component, ref string) string { return component + "\x00" + ref }

// duplicate returns the change c repeats: the same delivery for the same
// component (a replay that got past the handler's memory, or one made to
// another master before a failover), or the revision the component's ref is
// already recorded at (a webhook and a poll racing each other).
func (x *intakeIndex) duplicate(c *ForceCmd) (int64, bool) {
	s := c.Source
	if s == nil || s.Kind == KindForce {
		return 0, false
	}
	if s.Delivery != "" {
		if id, ok := x.deliveries[deliveryKey(s, c.Component)]; ok {
			return id, true
		}
	}
	if c.Ref != "" && c.Revision != "" {
		if prev, ok := x.last[refKey(c.Component, c.Ref)]; ok && prev.Revision == c.Revision {
			return prev.ID, true
		}
	}
	return 0, false
}

func (x *intakeIndex) add(ch *Change) {
	if s := ch.Source; s != nil && s.Delivery != "" {
		x.deliveries[deliveryKey(s, ch.Component)] = ch.ID
	}
	if ch.Ref != "" && ch.Revision != "" {
		x.last[refKey(ch.Component, ch.Ref)] = ch
	}
}

// LastRevisions returns, for each ref any of components was recorded at, the
// revision of the newest such change. Components built from one repository
// share its refs, so a poller seeded with this carries on where the farm's
// record stops.
func (f *FSM) LastRevisions(components []string) map[string]string {
	f.mu.RLock()
	defer f.mu.RUnlock()
	newest := map[string]*Change{}
	for _, ch := range f.intake.last {
		for _, comp := range components {
			if ch.Component == comp {
				if prev, ok := newest[ch.Ref]; !ok || prev.ID < ch.ID {
					newest[ch.Ref] = ch
				}
			}
		}
	}
	out := make(map[string]string, len(newest))
	for ref, ch := range newest {
		out[ref] = ch.Revision
	}
	return out
}
