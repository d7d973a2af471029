package view

import (
	"context"
	"slices"

	"github.com/kiln-build/kiln/builders"
	"github.com/kiln-build/kiln/master/api"
	"github.com/kiln-build/kiln/master/state"
	"github.com/kiln-build/kiln/master/web"
)

// gridLayout is the matrix arranged as the grid: components by name ×
// targets. It depends on the configuration only, so it is built once per
// matrix and the grid's per-view cost is one index lookup per builder.
type gridLayout struct {
	mx      *builders.Matrix
	targets []web.Target
	comps   []string
	// cells[r*len(targets)+t] is the builder of row r, target t, or "".
	cells []string
	// list is every builder in grid order, with its index into cells.
	list  []gridBuilder
	names []string // list's builder names, for state.Latest
}

type gridBuilder struct {
	name, component, target string
	cell                    int
}

func newGridLayout(mx *builders.Matrix) *gridLayout {
	l := &gridLayout{mx: mx}
	col := make(map[string]int, len(mx.Targets))
	for i, t := range mx.Targets {
		l.targets = append(l.targets, web.Target{Distro: t.Distro, Version: t.Version, Arch: t.Arch})
		col[t.String()] = i
	}
	row := map[string]int{}
	for _, b := range mx.Builders {
		if _, ok := row[b.Component.Name]; !ok {
			row[b.Component.Name] = 0
			l.comps = append(l.comps, b.Component.Name)
		}
	}
	slices.Sort(l.comps)
	for i, c := range l.comps {
		row[c] = i
	}
	l.cells = make([]string, len(l.comps)*len(l.targets))
	for _, b := range mx.Builders {
		i := row[b.Component.Name]*len(l.targets) + col[b.Target.String()]
		l.cells[i] = b.Name
	}
	for i, name := range l.cells {
		if name == "" {
			continue
		}
		b, _ := mx.Builder(name)
		l.list = append(l.list, gridBuilder{name: name, component: b.Component.Name, target: b.Target.String(), cell: i})
		l.names = append(l.names, name)
	}
	return l
}

// grid returns the layout of the current matrix and the latest build of
// each builder in it, indexed like layout.list.
func (v *View) grid() (*gridLayout, []state.BuildRef) {
	mx := v.o.Matrix()
	l := v.layout.Load()
	if l == nil || l.mx != mx {
		// A config reload swaps the matrix; racing views build equal layouts.
		l = newGridLayout(mx)
		v.layout.Store(l)
	}
	return l, v.o.Node.FSM.Latest(l.names)
}

// Builders lists configured builders with their latest build (the grid, as
// the API serves it), in grid order.
func (v *View) Builders(f api.BuilderFilter) ([]api.BuilderStatus, int) {
	l, latest := v.grid()
	var out []api.BuilderStatus
	total := 0
	for i, b := range l.list {
		ref := latest[i]
		if (f.Component != "" && b.component != f.Component) || (f.Target != "" && b.target != f.Target) {
			continue
		}
		if f.Status != "" && ref.Status != f.Status && (f.Status != api.StatusNever || ref.ID != 0) {
			continue
		}
		total++
		if total <= f.Offset || (f.Limit > 0 && len(out) >= f.Limit) {
			continue
		}
		bs := api.BuilderStatus{Name: b.name, Component: b.component, Target: b.target}
		if ref.ID != 0 {
			bs.Latest = &api.BuildRef{ID: ref.ID, Status: ref.Status}
		}
		out = append(out, bs)
	}
	return out, total
}

func (s *Pages) Grid(context.Context) (web.Grid, error) {
	l, latest := s.v.grid()
	cells := make([]web.GridCell, len(l.cells))
	for i, b := range l.list {
		cells[b.cell] = web.GridCell{Builder: b.name, Build: latest[i].ID, Status: web.Status(latest[i].Status)}
	}
	g := web.Grid{Targets: l.targets, Rows: make([]web.GridRow, len(l.comps))}
	n := len(l.targets)
	for r, c := range l.comps {
		g.Rows[r] = web.GridRow{Component: c, Cells: cells[r*n : (r+1)*n : (r+1)*n]}
	}
	return g, nil
}
