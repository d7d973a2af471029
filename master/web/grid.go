package web

import (
	"cmp"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

type gridFilters struct {
	Distro, Version, Arch, Component string
	Status                           Status
}

type gridView struct {
	Filters  gridFilters
	Distros  []string
	Versions []string
	Arches   []string
	Counts   []statusCount
	Cells    int
	Groups   []distroGroup
	Targets  []Target
	Rows     []gridRowView
	Clear    string
	Statuses []Status
	// For the force form.
	CanForce   bool
	Components []string
	AllTargets []Target
}

type statusCount struct {
	Status Status
	N      int
	Href   string
}

type distroGroup struct {
	Distro   string
	Span     int
	Versions []versionGroup
}

type versionGroup struct {
	Version string
	Span    int
}

type gridRowView struct {
	Component string
	// Cells is pre-rendered: at 4,300 cells running each through the
	// template engine costs more than the rest of the page together.
	Cells template.HTML
}

func (s *server) gridPage(w http.ResponseWriter, r *http.Request) {
	p := params{q: r.URL.Query()}
	f := gridFilters{
		Distro:    p.str("distro"),
		Version:   p.str("version"),
		Arch:      p.str("arch"),
		Component: p.str("component"),
		Status:    p.status("status"),
	}
	if p.err != nil {
		s.fail(w, r, http.StatusBadRequest, p.err.Error())
		return
	}
	g, err := s.src.Grid(r.Context())
	if err == nil {
		for _, row := range g.Rows {
			if len(row.Cells) != len(g.Targets) {
				err = fmt.Errorf("grid row %s has %d cells for %d targets", row.Component, len(row.Cells), len(g.Targets))
				break
			}
		}
	}
	if err != nil {
		s.sourceError(w, r, "the grid", err)
		return
	}
	v := gridView{Filters: f, Statuses: Statuses, Clear: "/", CanForce: s.actions != nil, AllTargets: g.Targets}
	for _, row := range g.Rows {
		v.Components = append(v.Components, row.Component)
	}
	v.Distros, v.Versions, v.Arches = targetChoices(g.Targets, f)

	// Columns: the targets passing the filters, grouped so each distro and
	// each distro version is one contiguous header span, in the source's order.
	var cols []int
	for i, t := range g.Targets {
		if (f.Distro == "" || t.Distro == f.Distro) && (f.Version == "" || t.Version == f.Version) && (f.Arch == "" || t.Arch == f.Arch) {
			cols = append(cols, i)
		}
	}
	distroRank, versionRank := map[string]int{}, map[string]int{}
	for _, i := range cols {
		t := g.Targets[i]
		if _, ok := distroRank[t.Distro]; !ok {
			distroRank[t.Distro] = len(distroRank)
		}
		if _, ok := versionRank[t.Distro+"/"+t.Version]; !ok {
			versionRank[t.Distro+"/"+t.Version] = len(versionRank)
		}
	}
	slices.SortStableFunc(cols, func(a, b int) int {
		ta, tb := g.Targets[a], g.Targets[b]
		return cmp.Or(cmp.Compare(distroRank[ta.Distro], distroRank[tb.Distro]),
			cmp.Compare(versionRank[ta.Distro+"/"+ta.Version], versionRank[tb.Distro+"/"+tb.Version]))
	})
	for _, i := range cols {
		t := g.Targets[i]
		v.Targets = append(v.Targets, t)
		if n := len(v.Groups); n == 0 || v.Groups[n-1].Distro != t.Distro {
			v.Groups = append(v.Groups, distroGroup{Distro: t.Distro})
		}
		d := &v.Groups[len(v.Groups)-1]
		d.Span++
		if n := len(d.Versions); n == 0 || d.Versions[n-1].Version != t.Version {
			d.Versions = append(d.Versions, versionGroup{Version: t.Version})
		}
		d.Versions[len(d.Versions)-1].Span++
	}

	counts := map[Status]int{}
	var b strings.Builder
	needle := strings.ToLower(f.Component)
	for _, row := range g.Rows {
		if needle != "" && !strings.Contains(strings.ToLower(row.Component), needle) {
			continue
		}
		b.Reset()
		match := f.Status == ""
		for _, i := range cols {
			c := row.Cells[i]
			if c.Builder == "" {
				b.WriteString("<td></td>")
				continue
			}
			st := c.Status
			if c.Build == 0 {
				st = ""
			} else {
				counts[st]++
				v.Cells++
			}
			dim := f.Status != "" && st != f.Status
			match = match || !dim
			writeCell(&b, row.Component, g.Targets[i], c, st, dim)
		}
		if match {
			v.Rows = append(v.Rows, gridRowView{Component: row.Component, Cells: template.HTML(b.String())})
		}
	}
	for _, st := range Statuses {
		if counts[st] > 0 {
			v.Counts = append(v.Counts, statusCount{Status: st, N: counts[st], Href: with(r.URL.Query(), "status", string(st))})
		}
	}
	s.render(w, r, http.StatusOK, "grid", "grid", v)
}

// writeCell writes one grid cell. Everything variable goes through
// template.HTMLEscapeString since this bypasses the template engine.
func writeCell(b *strings.Builder, component string, t Target, c GridCell, st Status, dim bool) {
	class := "s-none"
	if st != "" {
		class = "s-" + string(st)
	}
	if dim {
		class += " dim"
	}
	title := c.Builder
	if st == "" {
		title += ": never built"
	} else {
		title += ": " + string(st) + " #" + strconv.FormatInt(c.Build, 10)
	}
	b.WriteString(`<td><a class="`)
	b.WriteString(class)
	b.WriteString(`" title="`)
	b.WriteString(template.HTMLEscapeString(title))
	if c.Build != 0 {
		b.WriteString(`" href="/builds/`)
		b.WriteString(strconv.FormatInt(c.Build, 10))
	} else {
		b.WriteString(`" href="/builds?component=`)
		b.WriteString(template.URLQueryEscaper(component))
		b.WriteString(`&amp;target=`)
		b.WriteString(template.URLQueryEscaper(t.String()))
	}
	b.WriteString(`"></a></td>`)
}

// targetChoices lists the values each target filter can take given the
// other target filters, so the menus never offer an empty grid.
func targetChoices(ts []Target, f gridFilters) (distros, versions, arches []string) {
	seen := map[string]bool{}
	add := func(list *[]string, kind, v string) {
		if !seen[kind+v] {
			seen[kind+v] = true
			*list = append(*list, v)
		}
	}
	for _, t := range ts {
		add(&distros, "d", t.Distro)
		if f.Distro == "" || t.Distro == f.Distro {
			add(&versions, "v", t.Version)
			if f.Version == "" || t.Version == f.Version {
				add(&arches, "a", t.Arch)
			}
		}
	}
	slices.Sort(distros)
	slices.Sort(arches)
	return distros, versions, arches
}
