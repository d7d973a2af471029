package view

import (
	"context"

	"github.com/kiln-build/kiln/master/api"
	"github.com/kiln-build/kiln/master/web"
)

func (v *View) Workers() []api.Worker {
	return each(v.o.Scheduler.Workers(), apiWorker)
}

func (s *Pages) Workers(context.Context) ([]web.Worker, error) {
	ws := s.v.o.Scheduler.Workers()
	out := make([]web.Worker, len(ws))
	for i, w := range ws {
		out[i] = web.Worker{Name: w.Name, Tags: w.Tags, Slots: w.Slots, Running: w.Running, LastHeartbeat: w.LastSeen, Connected: w.Connected, Version: w.KilnVersion}
	}
	return out, nil
}
