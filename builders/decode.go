package builders

import (
	"encoding"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"
)

// Pos is where something was written in a config file.
type Pos struct {
	File         string
	Line, Column int
}

// nodeBudget bounds how many YAML nodes one load may visit, so that nested
// aliases ("billion laughs") cannot make a small file expand without limit.
// A hand-written farm of a few hundred components is well under 50,000.
const nodeBudget = 100_000

// decoder fills the schema structs from yaml.v3 nodes by reflection. yaml.v3's
// own Decode stops at the first problem and forgets where values came from;
// this one reports every problem with its position and key path, and records
// the position of every key so validation can point at it too.
type decoder struct {
	file      string                // file of the node being decoded
	origin    map[*yaml.Node]string // file of nodes that a directory merge moved between files
	pos       map[string]Pos        // key path → where it was written
	errs      Errors
	budget    int
	inAlias   map[*yaml.Node]bool
	exhausted bool
}

func newDecoder(file string) *decoder {
	return &decoder{
		file:    file,
		origin:  map[*yaml.Node]string{},
		pos:     map[string]Pos{},
		budget:  nodeBudget,
		inAlias: map[*yaml.Node]bool{},
	}
}

func (d *decoder) errorf(n *yaml.Node, path, hint, format string, args ...any) {
	d.errs = append(d.errs, &Error{
		File: d.file, Line: n.Line, Column: n.Column,
		Path: path, Msg: fmt.Sprintf(format, args...), Hint: hint,
	})
}

// enter switches to the file a merged node came from and returns a func that
// switches back.
func (d *decoder) enter(n *yaml.Node) func() {
	f, ok := d.origin[n]
	if !ok || f == d.file {
		return func() {}
	}
	prev := d.file
	d.file = f
	return func() { d.file = prev }
}

func (d *decoder) record(path string, n *yaml.Node) {
	d.pos[path] = Pos{File: d.file, Line: n.Line, Column: n.Column}
}

var textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()

func (d *decoder) value(n *yaml.Node, v reflect.Value, path string) {
	d.budget--
	if d.budget < 0 {
		if !d.exhausted {
			d.exhausted = true
			d.errorf(n, path, "a config this large is almost certainly aliases expanding each other", "too many values (more than %d)", nodeBudget)
		}
		return
	}
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil || d.inAlias[n.Alias] {
			d.errorf(n, path, "", "alias *%s refers to a value that contains it", n.Value)
			return
		}
		d.inAlias[n.Alias] = true
		d.value(n.Alias, v, path)
		delete(d.inAlias, n.Alias)
		return
	}
	if isNull(n) {
		return
	}
	if v.Type() == whenType {
		d.when(n, v, path)
		return
	}
	if reflect.PointerTo(v.Type()).Implements(textUnmarshalerType) {
		d.text(n, v, path)
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.value(n, v.Elem(), path)
	case reflect.String:
		if d.scalar(n, path, "a string") {
			v.SetString(n.Value)
		}
	case reflect.Int:
		d.int(n, v, path)
	case reflect.Bool:
		d.bool(n, v, path)
	case reflect.Slice:
		d.slice(n, v, path)
	case reflect.Map:
		d.mapping(n, v, path)
	case reflect.Struct:
		d.structure(n, v, path)
	default:
		panic("builders: no decoder for " + v.Type().String())
	}
}

func (d *decoder) scalar(n *yaml.Node, path, want string) bool {
	if n.Kind == yaml.ScalarNode {
		return true
	}
	hint := ""
	if n.Kind == yaml.SequenceNode && len(n.Content) == 1 {
		hint = "drop the brackets or the leading `-`: this takes one value"
	}
	d.errorf(n, path, hint, "expected %s, got %s", want, describe(n))
	return false
}

func (d *decoder) text(n *yaml.Node, v reflect.Value, path string) {
	if !d.scalar(n, path, "a string") {
		return
	}
	if err := v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(n.Value)); err != nil {
		d.errorf(n, path, "", "%v", err)
	}
}

func (d *decoder) int(n *yaml.Node, v reflect.Value, path string) {
	if !d.scalar(n, path, "an integer") {
		return
	}
	i, err := strconv.ParseInt(n.Value, 0, 64)
	if n.ShortTag() != "!!int" || err != nil || v.OverflowInt(i) {
		hint := ""
		if err == nil && n.ShortTag() == "!!str" {
			hint = "remove the quotes"
		}
		d.errorf(n, path, hint, "expected an integer, got %s", describe(n))
		return
	}
	v.SetInt(i)
}

func (d *decoder) bool(n *yaml.Node, v reflect.Value, path string) {
	if !d.scalar(n, path, "true or false") {
		return
	}
	if n.ShortTag() != "!!bool" {
		d.errorf(n, path, "write true or false", "expected true or false, got %s", describe(n))
		return
	}
	v.SetBool(strings.EqualFold(n.Value, "true"))
}

func (d *decoder) slice(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.SequenceNode {
		hint := ""
		if n.Kind == yaml.ScalarNode {
			hint = fmt.Sprintf("write [%s] or one `- item` per line", n.Value)
		}
		d.errorf(n, path, hint, "expected a list, got %s", describe(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		restore := d.enter(item)
		p := path + "[" + strconv.Itoa(i) + "]"
		d.record(p, item)
		if isNull(item) {
			d.errorf(item, p, "delete the empty `-`, or quote the word if you meant \"null\"", "empty list item")
		} else {
			d.value(item, s.Index(i), p)
		}
		restore()
	}
	v.Set(s)
}

type pair struct{ key, val *yaml.Node }

// pairs lists a mapping's key/value pairs with YAML merge keys (<<) applied:
// explicit keys win over merged ones, earlier merged mappings over later ones.
func (d *decoder) pairs(n *yaml.Node, path string) []pair {
	var out, merged []pair
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.errorf(k, path, "", "a key must be a plain string, got %s", describe(k))
			continue
		}
		if k.Value == "<<" && k.ShortTag() == "!!merge" {
			merged = append(merged, d.mergeKey(val, path)...)
			continue
		}
		if prev, dup := seen[k.Value]; dup {
			restore := d.enter(k)
			d.errorf(k, join(path, k.Value), "delete one of them", "key %q is set twice (first on line %d)", k.Value, prev.Line)
			restore()
			continue
		}
		seen[k.Value] = k
		out = append(out, pair{k, val})
	}
	for _, p := range merged {
		if _, ok := seen[p.key.Value]; !ok {
			seen[p.key.Value] = p.key
			out = append(out, p)
		}
	}
	return out
}

func (d *decoder) mergeKey(val *yaml.Node, path string) []pair {
	if d.budget--; d.budget < 0 {
		return nil
	}
	for val.Kind == yaml.AliasNode && val.Alias != nil && !d.inAlias[val.Alias] {
		val = val.Alias
	}
	switch val.Kind {
	case yaml.MappingNode:
		d.inAlias[val] = true
		defer delete(d.inAlias, val)
		return d.pairs(val, path)
	case yaml.SequenceNode:
		var out []pair
		for _, m := range val.Content {
			out = append(out, d.mergeKey(m, path)...)
		}
		return out
	case yaml.AliasNode:
		d.errorf(val, path, "", "merge key (<<) *%s refers to the mapping that contains it", val.Value)
		return nil
	}
	d.errorf(val, path, "", "a merge key (<<) takes a mapping or a list of mappings, got %s", describe(val))
	return nil
}

func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "", "expected a mapping of name: value, got %s", describe(n))
		return
	}
	m := reflect.MakeMap(v.Type())
	for _, p := range d.pairs(n, path) {
		restore := d.enter(p.key)
		kp := join(path, p.key.Value)
		d.record(kp, p.key)
		ev := reflect.New(v.Type().Elem()).Elem()
		if ev.Kind() == reflect.String {
			// Values of string maps (env, properties, with) are taken as
			// written, so `ABI: 2` or `strict: yes` need no quotes.
			if d.scalar(p.val, kp, "a string") && !isNull(p.val) {
				ev.SetString(p.val.Value)
			}
		} else {
			d.value(p.val, ev, kp)
		}
		m.SetMapIndex(reflect.ValueOf(p.key.Value), ev)
		restore()
	}
	v.Set(m)
}

func (d *decoder) structure(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "", "expected a mapping of key: value, got %s", describe(n))
		return
	}
	fields := fieldsOf(v.Type())
	for _, p := range d.pairs(n, path) {
		restore := d.enter(p.key)
		kp := join(path, p.key.Value)
		idx, ok := fields.index[p.key.Value]
		if !ok {
			d.errorf(p.key, kp, suggest(p.key.Value, fields.names), "unknown key %q", p.key.Value)
			restore()
			continue
		}
		d.record(kp, p.key)
		d.value(p.val, v.Field(idx), kp)
		restore()
	}
	if c, ok := v.Addr().Interface().(*Component); ok && c.Git != "" {
		c.Git = resolveGit(c.Git, d.pos[join(path, "git")].File)
	}
}

type structFields struct {
	index map[string]int
	names []string // sorted, for hints
}

var fieldCache sync.Map // reflect.Type → *structFields

func fieldsOf(t reflect.Type) *structFields {
	if f, ok := fieldCache.Load(t); ok {
		return f.(*structFields)
	}
	f := &structFields{index: map[string]int{}}
	for i := range t.NumField() {
		sf := t.Field(i)
		name, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if !sf.IsExported() || name == "-" || name == "" {
			continue
		}
		f.index[name] = i
		f.names = append(f.names, name)
	}
	slices.Sort(f.names)
	fieldCache.Store(t, f)
	return f
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	v := n.Value
	if len(v) > 40 {
		v = v[:37] + "..."
	}
	switch n.ShortTag() {
	case "!!int", "!!float":
		return "the number " + v
	case "!!bool":
		return "the boolean " + v
	case "!!null":
		return "nothing"
	}
	return strconv.Quote(v)
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" }
