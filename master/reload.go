package master

import (
	"context"
	"fmt"
	"reflect"
	"time"

	"github.com/kiln-build/kiln/builders"
	"github.com/kiln-build/kiln/master/confsrc"
	"github.com/kiln-build/kiln/master/natsd"
	"github.com/kiln-build/kiln/master/state"
	"github.com/kiln-build/kiln/protocol"
)

// applyConfig is confsrc's Applier: it makes a validated config the running
// one. Everything that can refuse it (secrets, tokens, webhook routes) is
// worked out first, so a refusal changes nothing; then the matrix is
// swapped and each part told.
func (m *Master) applyConfig(ctx context.Context, cfg *builders.Config, mx *builders.Matrix, dir, version string) (confsrc.Applied, error) {
	plan, err := m.intake.Plan(cfg, dir)
	if err != nil {
		return confsrc.Applied{}, err
	}
	var users []natsd.User
	if m.nats != nil {
		if users, err = confsrc.NATSUsers(cfg, dir, m.natsMasterUser()); err != nil {
			return confsrc.Applied{}, err
		}
	}
	if !reflect.DeepEqual(cfg.Users, m.matrix.Load().Config.Users) {
		// Web and API users; a token that cannot be read refuses the config.
		if err := m.setUsers(cfg.Users, dir); err != nil {
			return confsrc.Applied{}, err
		}
	}
	old := m.matrix.Load()
	diff := builders.Diff(old, mx)
	m.matrix.Store(mx)
	if err := m.intake.Apply(plan); err != nil {
		m.log.Error("config applied but change intake not updated", "err", err)
	}
	if users != nil {
		// New workers must be able to log in; a failure here leaves the old
		// users, which the status and log say.
		if err := m.nats.SetUsers(users); err != nil {
			m.log.Error("config applied but nats users not updated", "err", err)
		}
	}
	cancelled := m.retire(ctx, diff.Removed, version)
	m.sched.Wake()
	m.publish.Refresh() // new channels and targets are served at once
	return confsrc.Applied{Old: old, Diff: diff, Cancelled: cancelled}, nil
}

// retire cancels the queued requests of removed builders. Running builds
// finish: they were started with a config that had them. Followers leave
// it to the leader, whose reload does the same.
func (m *Master) retire(ctx context.Context, removed []string, version string) int {
	if len(removed) == 0 || !m.node.IsLeader() {
		return 0
	}
	gone := make(map[string]bool, len(removed))
	for _, b := range removed {
		gone[b] = true
	}
	pending, _ := m.node.FSM.Builds(state.Filter{Status: protocol.StatusPending})
	var cmds []state.Command
	now := time.Now()
	for _, b := range pending {
		if gone[b.Builder] {
			reason := fmt.Sprintf("builder %s was removed from the configuration (%s)", b.Builder, confsrc.ShortVersion(version))
			cmds = append(cmds, state.Command{Cancel: &state.CancelCmd{Build: b.ID, Reason: reason, Time: now}})
		}
	}
	if len(cmds) == 0 {
		return 0
	}
	outs, err := m.node.Apply(ctx, cmds...)
	if err != nil {
		m.log.Error("queued requests of removed builders not cancelled", "err", err)
		return 0
	}
	n := 0
	for _, o := range outs {
		if o.Err == nil {
			n++
		}
	}
	return n
}
