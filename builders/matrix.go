package builders

import (
	"reflect"
	"slices"
)

// Builder returns the builder with that name.
func (m *Matrix) Builder(name string) (*Builder, bool) {
	b, ok := m.byName[name]
	return b, ok
}

// Component returns the component with that name.
func (m *Matrix) Component(name string) (*Component, bool) {
	c, ok := m.components[name]
	return c, ok
}

// ComponentBuilders returns a component's builders in topological order.
func (m *Matrix) ComponentBuilders(component string) []*Builder {
	return slices.Clone(m.byComponent[component])
}

// Edges counts the dependency edges between builders.
func (m *Matrix) Edges() int {
	n := 0
	for _, b := range m.Builders {
		n += len(b.Deps)
	}
	return n
}

// Rebuilds returns what a change to a component builds: its builders and,
// per its rebuild policy, the builders that depend on them on the same
// target, in topological order.
func (m *Matrix) Rebuilds(component string) []*Builder {
	c, ok := m.components[component]
	if !ok {
		return nil
	}
	set := map[string]bool{}
	var queue []string
	for _, b := range m.byComponent[component] {
		set[b.Name] = true
		queue = append(queue, b.Name)
	}
	switch c.Rebuild {
	case RebuildDirect:
		for _, name := range queue {
			for _, d := range m.byName[name].Dependents {
				set[d] = true
			}
		}
	case RebuildTransitive:
		m.walk(queue, set, func(b *Builder) []string { return b.Dependents })
	}
	return m.ordered(set)
}

// DepsClosure returns every builder the named one needs, directly or not, in
// topological order.
func (m *Matrix) DepsClosure(builder string) []string {
	return m.closure(builder, func(b *Builder) []string { return b.Deps })
}

// DependentsClosure returns every builder that needs the named one, directly
// or not, in topological order.
func (m *Matrix) DependentsClosure(builder string) []string {
	return m.closure(builder, func(b *Builder) []string { return b.Dependents })
}

func (m *Matrix) closure(builder string, next func(*Builder) []string) []string {
	if _, ok := m.byName[builder]; !ok {
		return nil
	}
	set := map[string]bool{}
	m.walk([]string{builder}, set, next)
	delete(set, builder)
	names := make([]string, 0, len(set))
	for _, b := range m.ordered(set) {
		names = append(names, b.Name)
	}
	return names
}

func (m *Matrix) walk(queue []string, set map[string]bool, next func(*Builder) []string) {
	for len(queue) > 0 {
		name := queue[len(queue)-1]
		queue = queue[:len(queue)-1]
		for _, n := range next(m.byName[name]) {
			if !set[n] {
				set[n] = true
				queue = append(queue, n)
			}
		}
	}
}

func (m *Matrix) ordered(set map[string]bool) []*Builder {
	out := make([]*Builder, 0, len(set))
	for name := range set {
		out = append(out, m.byName[name])
	}
	slices.SortFunc(out, func(a, b *Builder) int { return m.order[a.Name] - m.order[b.Name] })
	return out
}

// LongestChain returns the longest dependency chain, dependencies first;
// of equally long chains the one ending first in topological order.
func (m *Matrix) LongestChain() []string {
	length := make(map[string]int, len(m.Builders))
	prev := map[string]string{}
	end := ""
	for _, b := range m.Builders {
		length[b.Name] = 1
		for _, d := range b.Deps {
			if length[d]+1 > length[b.Name] {
				length[b.Name] = length[d] + 1
				prev[b.Name] = d
			}
		}
		if end == "" || length[b.Name] > length[end] {
			end = b.Name
		}
	}
	var chain []string
	for n := end; n != ""; n = prev[n] {
		chain = append(chain, n)
	}
	slices.Reverse(chain)
	return chain
}

// MatrixDiff is what a config reload changes, by builder name, sorted.
type MatrixDiff struct {
	Added, Removed, Changed []string
}

// Empty reports whether the reload changes no builder.
func (d MatrixDiff) Empty() bool {
	return len(d.Added) == 0 && len(d.Removed) == 0 && len(d.Changed) == 0
}

// Diff compares two matrices builder by builder, on everything a build of the
// builder depends on. Either may be nil (an empty matrix).
func Diff(old, new *Matrix) MatrixDiff {
	var d MatrixDiff
	oldB, newB := builderMap(old), builderMap(new)
	for name, nb := range newB {
		ob, ok := oldB[name]
		switch {
		case !ok:
			d.Added = append(d.Added, name)
		case !reflect.DeepEqual(signature(ob), signature(nb)):
			d.Changed = append(d.Changed, name)
		}
	}
	for name := range oldB {
		if _, ok := newB[name]; !ok {
			d.Removed = append(d.Removed, name)
		}
	}
	slices.Sort(d.Added)
	slices.Sort(d.Removed)
	slices.Sort(d.Changed)
	return d
}

func builderMap(m *Matrix) map[string]*Builder {
	if m == nil {
		return nil
	}
	return m.byName
}

// builderSig is what makes two builders of the same name build differently.
type builderSig struct {
	Kind, Format, Git, Rebuild, Versions string
	Branches, Tags, Deps                 []string
	Steps                                []Step
	Properties                           map[string]string
	Priority                             int
	Collapse                             bool
}

func signature(b *Builder) builderSig {
	props := b.Properties
	if len(props) == 0 {
		props = nil // absent and empty properties build alike
	}
	return builderSig{
		Kind: b.Kind, Format: b.Format, Git: b.Component.Git, Rebuild: b.Component.Rebuild,
		Versions: b.Component.Versions, Branches: b.Component.Branches, Tags: b.Tags, Deps: b.Deps, Steps: b.Steps,
		Properties: props, Priority: b.Priority, Collapse: b.Collapse,
	}
}
