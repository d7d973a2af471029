package builders

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// node is a builder being expanded, with its graph edges as node indexes so
// that linking and sorting thousands of builders needs no hashing of names.
type node struct {
	b                *Builder
	comp, target     int // indexes in Config.Components and the sorted targets
	deps, dependents []int
}

// nameRanks gives each node its position in name order.
func nameRanks(nodes []node) []int {
	byName := make([]int, len(nodes))
	for i := range byName {
		byName[i] = i
	}
	slices.SortFunc(byName, func(a, b int) int { return cmp.Compare(nodes[a].b.Name, nodes[b].b.Name) })
	rank := make([]int, len(nodes))
	for r, i := range byName {
		rank[i] = r
	}
	return rank
}

// link fills Deps and Dependents on each target and reports dependencies that
// filters removed, once per component and dependency.
func (c *checker) link(nodes []node, grid []int, nT int, rank []int, index map[string]int) {
	type dep struct{ at, comp int } // index in depends, component index
	valid := map[int][]dep{}
	for name, ci := range index {
		seen := map[string]bool{}
		for j, d := range c.cfg.Components[ci].Depends {
			if di, ok := index[d]; ok && d != name && !seen[d] {
				valid[ci] = append(valid[ci], dep{j, di})
			}
			seen[d] = true
		}
	}
	type miss struct{ comp, at int }
	missing := map[miss][]int{}
	var order []miss
	for i := range nodes {
		n := &nodes[i]
		for _, d := range valid[n.comp] {
			k := grid[d.comp*nT+n.target]
			if k < 0 {
				key := miss{n.comp, d.at}
				if missing[key] == nil {
					order = append(order, key)
				}
				missing[key] = append(missing[key], i)
				continue
			}
			n.deps = append(n.deps, k)
			nodes[k].dependents = append(nodes[k].dependents, i)
		}
	}
	byRank := func(a, b int) int { return rank[a] - rank[b] }
	for i := range nodes {
		n := &nodes[i]
		slices.SortFunc(n.deps, byRank)
		slices.SortFunc(n.dependents, byRank)
		n.b.Deps = names(nodes, n.deps)
		n.b.Dependents = names(nodes, n.dependents)
	}
	for _, key := range order {
		c.missing(nodes, missing[key], c.cfg.Components[key.comp].Depends[key.at], idx(idx("components", key.comp)+".depends", key.at))
	}
}

func names(nodes []node, is []int) []string {
	if len(is) == 0 {
		return nil
	}
	out := make([]string, len(is))
	for j, i := range is {
		out[j] = nodes[i].b.Name
	}
	return out
}

// missing reports that a component's builders on some targets lack a
// dependency there, naming the first pair of builders.
func (c *checker) missing(nodes []node, at []int, dep, path string) {
	first := nodes[at[0]].b
	msg := fmt.Sprintf("%s depends on %s, but %s is filtered out", first.Name, dep, BuilderName(dep, first.Target))
	if len(at) > 1 {
		var more []string
		for _, i := range at[1:min(len(at), 4)] {
			more = append(more, nodes[i].b.Target.String())
		}
		if len(at) > 4 {
			more = append(more, fmt.Sprintf("%d more", len(at)-4))
		}
		msg += fmt.Sprintf(" (also on %s)", strings.Join(more, ", "))
	}
	c.errorf(path, fmt.Sprintf("build %s on those targets too, or filter %s out of them", dep, first.Component.Name), "%s", msg)
}

// topoSort orders builders dependencies first, ties by name (Kahn's
// algorithm with a heap ordered by name rank). Builders on a cycle are left
// out; the cycle has been reported.
func topoSort(nodes []node, rank []int) []*Builder {
	waiting := make([]int, len(nodes))
	h := rankHeap{rank: rank}
	for i, n := range nodes {
		waiting[i] = len(n.deps)
		if waiting[i] == 0 {
			h.push(i)
		}
	}
	out := make([]*Builder, 0, len(nodes))
	for len(h.items) > 0 {
		i := h.pop()
		out = append(out, nodes[i].b)
		for _, d := range nodes[i].dependents {
			if waiting[d]--; waiting[d] == 0 {
				h.push(d)
			}
		}
	}
	return out
}

// rankHeap is a min-heap of node indexes by rank. It is written out rather
// than built on container/heap, whose interface boxes every int it moves.
type rankHeap struct {
	items []int
	rank  []int
}

func (h *rankHeap) less(i, j int) bool { return h.rank[h.items[i]] < h.rank[h.items[j]] }

func (h *rankHeap) push(x int) {
	h.items = append(h.items, x)
	for i := len(h.items) - 1; i > 0; {
		parent := (i - 1) / 2
		if !h.less(i, parent) {
			break
		}
		h.items[i], h.items[parent] = h.items[parent], h.items[i]
		i = parent
	}
}

func (h *rankHeap) pop() int {
	top := h.items[0]
	last := len(h.items) - 1
	h.items[0] = h.items[last]
	h.items = h.items[:last]
	for i := 0; ; {
		small, l, r := i, 2*i+1, 2*i+2
		if l < last && h.less(l, small) {
			small = l
		}
		if r < last && h.less(r, small) {
			small = r
		}
		if small == i {
			return top
		}
		h.items[i], h.items[small] = h.items[small], h.items[i]
		i = small
	}
}
