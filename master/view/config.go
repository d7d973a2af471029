package view

import (
	"context"
	"fmt"

	"github.com/kiln-build/kiln/master/api"
	"github.com/kiln-build/kiln/master/confsrc"
	"github.com/kiln-build/kiln/master/web"
)

func (v *View) ConfigStatus() api.ConfigStatus { return v.o.ConfigStatus() }

// Pollers reports the repositories' pollers (nothing while not leading,
// since they do not run) and the config repository's.
func (v *View) Pollers() []api.Poller {
	return each(v.o.Intake.Pollers(), apiPoller)
}

// ConfigStatus names the configuration the farm runs and, while the newest
// one is refused, why, for the pages' banner.
func (s *Pages) ConfigStatus(context.Context) (web.ConfigStatus, error) {
	st := s.v.o.ConfigStatus()
	ws := web.ConfigStatus{Commit: st.Commit, LoadedAt: st.LoadedAt}
	if e := st.Error; e != nil {
		ws.Error = "commit " + confsrc.ShortVersion(e.Commit) + ": " + e.Message
		ws.File, ws.Line = e.File, e.Line
	} else if f := st.Fetch; f != nil && f.Failures > 0 {
		ws.Error = fmt.Sprintf("config repository unreachable (%d failures, running %s): %s", f.Failures, confsrc.ShortVersion(st.Commit), f.LastError)
	}
	return ws, nil
}

// Pollers reads what GET /api/v1/pollers shows, so the page and kiln ctl
// report the same pollers.
func (s *Pages) Pollers(context.Context) ([]web.Poller, error) {
	return s.v.Pollers(), nil
}
