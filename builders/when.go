package builders

import (
	"cmp"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/kiln-build/kiln/protocol"
)

// A step's `when:` is a mapping of key to matcher, all of which must hold:
//
//	when:
//	  distro: [debian, ubuntu]           # a list: the value is exactly one of these
//	  property.debian_version: '^12\.'   # a string: an RE2 regexp the value matches
//	  not: {arch: [i386]}                # none of these may hold
//
// Conditions travel to the worker as they are (protocol.Condition), target
// fields included, rather than being settled here when the matrix is
// expanded: a builder's steps are shared by every target of its distro, and a
// step the worker skips shows in the build with the condition that skipped
// it, where a step dropped here would silently be missing.

var whenType = reflect.TypeFor[When]()

// whenKeys is how hints list what `when:` takes.
var whenKeys = "when: takes " + strings.Join(protocol.ConditionFields, ", ") + ", property.NAME and not"

// when decodes a step's `when:` mapping. Only the shape is checked here;
// keys and regexps are checked with the rest of the config (checker.when),
// so that configs built in code are checked too.
func (d *decoder) when(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "e.g. when: {distro: [ubuntu]} or when: {property.NAME: REGEXP}", "expected a mapping of key: matcher, got %s", describe(n))
		return
	}
	w := When{} // not nil: `when: {}` is written, and refused later
	d.conditions(n, path, false, &w)
	v.Set(reflect.ValueOf(w))
}

// conditions appends a `when:` (or `not:`) mapping's conditions in the order
// written, so a skipped step names the first one that did not hold.
func (d *decoder) conditions(n *yaml.Node, path string, not bool, w *When) {
	for _, p := range d.pairs(n, path) {
		restore := d.enter(p.key)
		kp := join(path, p.key.Value)
		d.record(kp, p.key)
		val := deref(p.val)
		switch {
		case p.key.Value == "not" && not:
			// "not not" would need a tree of conditions; one level keeps
			// the wire form a flat list that reads the way it is written.
			d.errorf(p.key, kp, "write the condition itself, or list every negated one in the outer not:", "not: inside not:")
		case p.key.Value == "not":
			if val.Kind != yaml.MappingNode {
				d.errorf(val, kp, "e.g. not: {arch: [i386]}", "expected a mapping of key: matcher, got %s", describe(val))
			} else {
				d.conditions(val, kp, true, w)
			}
		default:
			c := protocol.Condition{Key: p.key.Value, Not: not}
			switch {
			case val.Kind == yaml.SequenceNode:
				var in []string
				d.value(p.val, reflect.ValueOf(&in).Elem(), kp)
				if in == nil {
					in = []string{} // an empty list is written, and refused later
				}
				c.In = in
			case val.Kind == yaml.ScalarNode && !isNull(val):
				c.Match = val.Value
			default:
				d.errorf(val, kp, "a regular expression, or a list of exact values: [a, b]", "expected a regular expression or a list of values, got %s", describe(val))
			}
			*w = append(*w, c)
		}
		restore()
	}
}

// when checks a step's conditions at key path base (…steps[2].when): keys,
// property names, regexps, and that a test on a target field can hold for
// some target of the farm, which catches a misspelt distro the way a filter
// matching no target is caught.
func (c *checker) when(base string, w When) {
	if w == nil {
		return
	}
	if len(w) == 0 {
		c.errorf(base, "delete it, or give a condition such as distro: [debian]", "no conditions")
		return
	}
	for _, cond := range w {
		p := base + "."
		if cond.Not {
			p += "not."
		}
		p += cond.Key
		name, isProp := strings.CutPrefix(cond.Key, protocol.PropertyKeyPrefix)
		switch {
		case isProp:
			if !c.name(p, "property name", name, propPattern, propRule) {
				continue
			}
		case !slices.Contains(protocol.ConditionFields, cond.Key):
			c.errorf(p, whenKeyHint(cond.Key), "unknown condition %q", cond.Key)
			continue
		}
		var re *regexp.Regexp
		switch {
		case cond.In != nil && len(cond.In) == 0:
			c.errorf(p, "list the values, or delete the condition", "an empty list matches nothing")
			continue
		case cond.In != nil && cond.Match != "":
			c.errorf(p, "", "both a list and a regular expression")
			continue
		case cond.In == nil:
			var err error
			if re, err = regexp.Compile(cond.Match); err != nil {
				c.errorf(p, "", "bad regular expression: %v", err)
				continue
			}
		}
		if err := cond.Validate(); err != nil {
			// The checks above are meant to cover Validate, so that a
			// config that loads never fails on a worker; this keeps that
			// promise if they ever drift apart.
			c.errorf(p, "", "%v", err)
			continue
		}
		if !isProp {
			c.targetValues(p, cond, re)
		}
	}
}

// targetValues reports values of a target-field condition that no target of
// the farm has.
func (c *checker) targetValues(p string, cond protocol.Condition, re *regexp.Regexp) {
	have := c.fieldValues()[cond.Key]
	known := "targets have " + cond.Key + " " + strings.Join(have, ", ")
	if re != nil {
		if !slices.ContainsFunc(have, re.MatchString) {
			c.errorf(p, known, "no target's %s matches %q", cond.Key, cond.Match)
		}
		return
	}
	for i, v := range cond.In {
		if !slices.Contains(have, v) {
			c.errorf(idx(p, i), cmp.Or(suggest(v, have), known), "no target has %s %q", cond.Key, v)
		}
	}
}

// fieldValues lists, for each of protocol.ConditionFields, the values the
// farm's targets have, sorted.
func (c *checker) fieldValues() map[string][]string {
	if c.fields != nil {
		return c.fields
	}
	sets := map[string]map[string]bool{}
	for _, f := range protocol.ConditionFields {
		sets[f] = map[string]bool{}
	}
	for _, t := range c.cfg.Targets {
		sets["distro"][t.Distro] = true
		sets["format"][t.Format] = true
		for _, v := range t.Versions {
			sets["version"][v] = true
		}
		for _, a := range t.Arches {
			sets["arch"][a] = true
		}
	}
	c.fields = map[string][]string{}
	for f, set := range sets {
		delete(set, "")
		c.fields[f] = slices.Sorted(maps.Keys(set))
	}
	return c.fields
}

// whenKeyHint suggests a fix for an unknown `when:` key and lists the valid
// ones.
func whenKeyHint(key string) string {
	if s := suggest(key, append(slices.Clone(protocol.ConditionFields), "not")); s != "" {
		return s + "; " + whenKeys
	}
	if validName(propPattern, key) {
		return "a property is written property." + key + "; " + whenKeys
	}
	return whenKeys
}

// withWhen returns a template's steps with a use: step's conditions put
// before each step's own, leaving the resolved template (shared by every use
// of it) as it was.
func withWhen(steps []Step, w When) []Step {
	if len(w) == 0 {
		return steps
	}
	out := slices.Clone(steps)
	for i := range out {
		out[i].When = slices.Concat(w, out[i].When)
	}
	return out
}
