package builders

import (
	"cmp"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"
)

// maxBuilders bounds the matrix so a hostile or mistaken config cannot make
// the master allocate without limit; the largest real farms are a few
// thousand builders.
const maxBuilders = 50_000

// maxSteps bounds a builder's step list after templates are spliced in, so
// templates using each other many times over cannot grow without limit.
const maxSteps = 500

// LoadMatrix loads a config (file or directory) and expands it.
func LoadMatrix(path string) (*Config, *Matrix, error) {
	cfg, err := Load(path)
	if err != nil {
		return nil, nil, err
	}
	m, err := Expand(cfg)
	if err != nil {
		return cfg, nil, err
	}
	return cfg, m, nil
}

// Expand validates a config and expands it into the matrix of builders. It
// fills defaults into cfg. Every problem comes back in one Errors value.
func Expand(cfg *Config) (*Matrix, error) {
	cfg.applyDefaults()
	c := newChecker(cfg)
	c.master()
	c.workers()
	c.users()
	c.notify()
	c.repos()
	c.checkTemplates()
	targets := c.checkTargets()
	index := c.checkComponents(targets)
	c.cycles(index)
	m := c.expand(targets, index)
	if err := c.errs.err(); err != nil {
		return nil, err
	}
	return m, nil
}

type targetInfo struct {
	Target
	distro int // index in Config.Targets
}

func (c *checker) checkTargets() []targetInfo {
	var out []targetInfo
	seen := map[Target]string{}
	for i, d := range c.cfg.Targets {
		p := idx("targets", i)
		c.name(p+".distro", "distro", d.Distro, namePattern, nameRule)
		c.nameList(p+".versions", "version", "versions", d.Versions)
		c.nameList(p+".arches", "arch", "arches", d.Arches)
		switch _, ok := kinds[d.Kind]; {
		case d.Kind == "":
			c.errorf(p, "one of "+strings.Join(kindNames, ", "), "distro %q has no kind", d.Distro)
		case !ok:
			c.errorf(p+".kind", kindHint(d.Kind), "unknown kind %q", d.Kind)
		}
		_, knownKind := kinds[d.Kind]
		switch {
		case d.Format == "" && knownKind:
			c.errorf(p, "apt or yum", "distro %q has no format (kind %q does not imply one)", d.Distro, d.Kind)
		case d.Format == "":
		case !slices.Contains(formats, d.Format):
			c.errorf(p+".format", cmp.Or(suggest(d.Format, formats), "apt or yum"), "unknown format %q", d.Format)
		case kinds[d.Kind].format != "" && kinds[d.Kind].format != d.Format:
			c.errorf(p+".format", "", "kind %s makes %s packages, not %s", d.Kind, kinds[d.Kind].format, d.Format)
		}
		c.tags(p+".tags", d.Tags)
		c.steps(p+".steps", d.Steps)
		// Repeats within one entry were reported as duplicate names above.
		for _, v := range slices.Compact(slices.Sorted(slices.Values(d.Versions))) {
			for _, a := range slices.Compact(slices.Sorted(slices.Values(d.Arches))) {
				t := Target{Distro: d.Distro, Version: v, Arch: a}
				if first, dup := seen[t]; dup {
					pos, _ := c.cfg.Position(first)
					c.errorf(p, "list each distro/version/arch once", "duplicate target %s (first at %s)", t, where(pos, first))
					continue
				}
				seen[t] = p
				out = append(out, targetInfo{Target: t, distro: i})
			}
		}
	}
	slices.SortFunc(out, func(a, b targetInfo) int { return cmp.Compare(a.String(), b.String()) })
	return out
}

func (c *checker) nameList(path, what, plural string, names []string) {
	if len(names) == 0 {
		c.errorf(path, "", "no %s", plural)
	}
	seen := unique{}
	for i, n := range names {
		if c.name(idx(path, i), what, n, namePattern, nameRule) {
			c.unique(seen, idx(path, i), what, n)
		}
	}
}

func kindHint(k string) string {
	return cmp.Or(suggest(k, kindNames), "one of "+strings.Join(kindNames, ", "))
}

// checkComponents checks each component on its own and returns the index of
// every component name (first use wins).
func (c *checker) checkComponents(targets []targetInfo) map[string]int {
	index := map[string]int{}
	seen := unique{}
	for i, comp := range c.cfg.Components {
		p := idx("components", i)
		if c.name(p+".name", "component name", comp.Name, namePattern, nameRule) {
			c.unique(seen, p+".name", "component", comp.Name)
			if _, dup := index[comp.Name]; !dup {
				index[comp.Name] = i
			}
		}
		if comp.Git == "" {
			c.errorf(p, "git: URL, user@host:path, or a path relative to this file", "component %q has no git repository", comp.Name)
		}
		for j, br := range comp.Branches {
			if br == "" || strings.ContainsAny(br, " \t\n~^:?*[\\") || strings.HasPrefix(br, "-") {
				c.errorf(idx(p+".branches", j), "", "invalid branch name %q", br)
			}
		}
		if _, ok := kinds[comp.Kind]; comp.Kind != "" && !ok {
			c.errorf(p+".kind", kindHint(comp.Kind), "unknown kind %q", comp.Kind)
		}
		if !slices.Contains(rebuildPolicies, comp.Rebuild) {
			c.errorf(p+".rebuild", cmp.Or(suggest(comp.Rebuild, rebuildPolicies), "none, direct or transitive"), "unknown rebuild policy %q", comp.Rebuild)
		}
		if !slices.Contains(versionPolicies, comp.Versions) {
			c.errorf(p+".versions", cmp.Or(suggest(comp.Versions, versionPolicies), "rebuild or exact"), "unknown version policy %q", comp.Versions)
		}
		c.tags(p+".tags", comp.Tags)
		for _, k := range slices.Sorted(maps.Keys(comp.Properties)) {
			c.name(p+".properties."+k, "property name", k, propPattern, propRule)
		}
		c.steps(p+".steps", comp.Steps)
		c.filters(p+".only", comp.Only, targets)
		c.filters(p+".exclude", comp.Exclude, targets)
	}
	names := slices.Sorted(maps.Keys(index))
	for i, comp := range c.cfg.Components {
		seenDep := map[string]bool{}
		for j, dep := range comp.Depends {
			p := idx(idx("components", i)+".depends", j)
			_, known := index[dep]
			switch {
			case dep == comp.Name:
				c.errorf(p, "delete it", "component %q depends on itself", dep)
			case !known:
				c.errorf(p, suggest(dep, names), "unknown dependency %q", dep)
			case seenDep[dep]:
				c.errorf(p, "delete one of them", "dependency %q listed twice", dep)
			}
			seenDep[dep] = true
		}
	}
	return index
}

func (c *checker) filters(base string, fs []Filter, targets []targetInfo) {
	checked := map[Filter]bool{}
	for i, f := range fs {
		if checked[f] {
			continue
		}
		checked[f] = true
		p := idx(base, i)
		if f == (Filter{}) {
			c.errorf(p, "set distro, version or arch", "empty filter matches every target")
			continue
		}
		bad := false
		for _, part := range [][2]string{{"distro", f.Distro}, {"version", f.Version}, {"arch", f.Arch}} {
			if _, err := path.Match(part[1], ""); err != nil {
				c.errorf(p+"."+part[0], "globs use * ? and [a-z]; close every [", "bad glob %q", part[1])
				bad = true
			}
		}
		if bad {
			continue
		}
		if !slices.ContainsFunc(targets, func(t targetInfo) bool { return f.Matches(t.Target) }) {
			c.errorf(p, "check the spelling against targets:", "filter %s matches no target", f)
		}
	}
}

// Matches reports whether every non-empty part of the filter matches the
// target's (path.Match globs).
func (f Filter) Matches(t Target) bool {
	return globMatch(f.Distro, t.Distro) && globMatch(f.Version, t.Version) && globMatch(f.Arch, t.Arch)
}

func globMatch(pattern, s string) bool {
	if pattern == "" {
		return true
	}
	ok, err := path.Match(pattern, s)
	return ok && err == nil
}

// String shows the filter as distro/version/arch with * for empty parts.
func (f Filter) String() string {
	return cmp.Or(f.Distro, "*") + "/" + cmp.Or(f.Version, "*") + "/" + cmp.Or(f.Arch, "*")
}

// selects reports whether a component is built on a target.
func selects(only, exclude []Filter, t Target) bool {
	if len(only) > 0 && !slices.ContainsFunc(only, func(f Filter) bool { return f.Matches(t) }) {
		return false
	}
	return !slices.ContainsFunc(exclude, func(f Filter) bool { return f.Matches(t) })
}

// distinct drops repeated filters (YAML aliases can repeat one many times)
// so selection costs what the operator wrote, not what aliases expand to.
func distinct(fs []Filter) []Filter {
	seen := make(map[Filter]bool, len(fs))
	out := fs[:0:0]
	for _, f := range fs {
		if !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	return out
}

// cycles reports every dependency cycle between components once, as the path
// that closes it.
func (c *checker) cycles(index map[string]int) {
	comps := c.cfg.Components
	state := make([]int8, len(comps)) // 0 unvisited, 1 on the stack, 2 done
	var stack []int
	var visit func(i int)
	visit = func(i int) {
		state[i] = 1
		stack = append(stack, i)
		for j, dep := range comps[i].Depends {
			k, ok := index[dep]
			if !ok || k == i {
				continue
			}
			switch state[k] {
			case 0:
				visit(k)
			case 1:
				loop := stack[slices.Index(stack, k):]
				names := make([]string, 0, len(loop)+1)
				for _, l := range loop {
					names = append(names, comps[l].Name)
				}
				if c.once("cycle", strings.Join(slices.Sorted(slices.Values(names)), " ")) {
					names = append(names, comps[k].Name)
					c.errorf(idx(idx("components", i)+".depends", j), "→ reads \"depends on\"; remove one of these dependencies",
						"dependency cycle: %s", strings.Join(names, " → "))
				}
			}
		}
		stack = stack[:len(stack)-1]
		state[i] = 2
	}
	for i := range comps {
		if state[i] == 0 {
			visit(i)
		}
	}
}

// resolved is what a component's builders on one distro share.
type resolved struct {
	kind  string
	steps []Step
	tags  []string
	// native kinds build with a tool that makes packages for the host's
	// own architecture, so their builders also need the target's arch
	// among a worker's tags; byArch keeps one tag list per arch.
	native bool
	byArch map[string][]string
}

// tagsFor returns the tags a builder of r on arch requires.
func (r *resolved) tagsFor(arch string) []string {
	if !r.native || arch == "" {
		return r.tags
	}
	if t, ok := r.byArch[arch]; ok {
		return t
	}
	t := slices.Concat(r.tags, []string{arch})
	slices.Sort(t)
	t = slices.Compact(t)
	if r.byArch == nil {
		r.byArch = map[string][]string{}
	}
	r.byArch[arch] = t
	return t
}

func (c *checker) expand(targets []targetInfo, index map[string]int) *Matrix {
	cfg := c.cfg
	m := &Matrix{
		Config:      cfg,
		components:  map[string]*Component{},
		byComponent: map[string][]*Builder{},
	}
	for _, t := range targets {
		m.Targets = append(m.Targets, t.Target)
	}
	if n := len(targets) * len(cfg.Components); n > maxBuilders {
		c.errorf("components", "split the farm", "%d components × %d targets is more than %d builders", len(cfg.Components), len(targets), maxBuilders)
		return m
	}
	nT := len(targets)
	grid := make([]int, len(cfg.Components)*nT) // component × target → node, or -1
	for i := range grid {
		grid[i] = -1
	}
	var nodes []node
	for ci := range cfg.Components {
		comp := &cfg.Components[ci]
		if i, ok := index[comp.Name]; !ok || i != ci {
			continue
		}
		m.components[comp.Name] = comp
		perDistro := map[int]*resolved{}
		only, exclude := distinct(comp.Only), distinct(comp.Exclude)
		for ti, t := range targets {
			if !selects(only, exclude, t.Target) {
				continue
			}
			r := perDistro[t.distro]
			if r == nil {
				r = c.resolveBuilder(ci, t.distro)
				perDistro[t.distro] = r
			}
			b := &Builder{
				Name:       BuilderName(comp.Name, t.Target),
				Component:  comp,
				Target:     t.Target,
				Kind:       r.kind,
				Format:     cfg.Targets[t.distro].Format,
				Tags:       r.tagsFor(t.Target.Arch),
				Steps:      r.steps,
				Properties: comp.Properties,
				Priority:   comp.Priority,
				Collapse:   comp.Collapse == nil || *comp.Collapse,
			}
			grid[ci*nT+ti] = len(nodes)
			nodes = append(nodes, node{b: b, comp: ci, target: ti})
		}
	}
	rank := nameRanks(nodes)
	c.link(nodes, grid, nT, rank, index)
	m.Builders = topoSort(nodes, rank)
	m.byName = make(map[string]*Builder, len(m.Builders))
	m.order = make(map[string]int, len(m.Builders))
	for i, b := range m.Builders {
		m.byName[b.Name] = b
		m.order[b.Name] = i
		m.byComponent[b.Component.Name] = append(m.byComponent[b.Component.Name], b)
	}
	if len(nodes) == 0 && len(c.errs) == 0 {
		c.errorf("components", "add components and targets, and check their only/exclude filters",
			"empty matrix: %d components × %d targets give no builders", len(cfg.Components), len(targets))
	}
	return m
}

// resolveBuilder works out the kind, steps and tags of a component's builders
// on one distro, reporting problems once per component and distro.
func (c *checker) resolveBuilder(ci, di int) *resolved {
	comp, d := &c.cfg.Components[ci], &c.cfg.Targets[di]
	p := idx("components", ci)
	r := &resolved{kind: cmp.Or(comp.Kind, d.Kind)}
	k, known := kinds[r.kind]
	if known && comp.Kind != "" && k.format != "" && slices.Contains(formats, d.Format) && k.format != d.Format {
		c.errorf(p+".kind", "limit the component with only:/exclude:, or use kind nfpm",
			"kind %s makes %s packages, but distro %s publishes %s", r.kind, k.format, d.Distro, d.Format)
	}
	var steps []Step
	switch {
	case len(comp.Steps) > 0:
		steps = c.resolveList(p+".steps", comp.Steps)
	case len(d.Steps) > 0:
		steps = c.resolveList(idx("targets", di)+".steps", d.Steps)
	}
	if steps == nil || r.kind == "shell" {
		var defaults []Step
		for _, typ := range k.steps {
			defaults = append(defaults, Step{Type: typ})
		}
		if r.kind == "shell" && !slices.ContainsFunc(steps, func(s Step) bool { return s.Type == "checkout" }) {
			steps = append(defaults, steps...)
		} else if steps == nil {
			steps = defaults
		}
	}
	if r.kind == "shell" && len(steps) < 2 && c.once("shell-steps", p) {
		c.errorf(p, "give the component steps: with at least one shell step", "component %q is kind shell but has no steps", comp.Name)
	}
	r.steps = nameSteps(steps)
	tags := slices.Concat(d.Tags, comp.Tags)
	if k.tool != "" {
		tags = append(tags, k.tool)
		r.native = true
	}
	slices.Sort(tags)
	r.tags = slices.Compact(tags)
	return r
}

// resolveList splices templates into a step list once per list, so problems
// in a component's steps are reported once, not once per distro.
func (c *checker) resolveList(path string, steps []Step) []Step {
	if r, ok := c.lists[path]; ok {
		return r
	}
	r := c.resolve(path, steps, nil)
	c.lists[path] = r
	return r
}

// nameSteps gives unnamed steps their type as name, and numbers repeated
// names (shell, shell-2, shell-3) so every step of a build has its own.
func nameSteps(steps []Step) []Step {
	out := slices.Clone(steps)
	used := map[string]int{}
	for i := range out {
		s := &out[i]
		if s.Name == "" {
			s.Name = s.Type
		}
		used[s.Name]++
		if n := used[s.Name]; n > 1 {
			s.Name = fmt.Sprintf("%s-%d", s.Name, n)
		}
	}
	return out
}
