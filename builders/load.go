package builders

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Load reads a config file, or every *.yaml and *.yml file under a directory
// (recursively, in path order, skipping names that start with a dot) merged
// into one config: the files ConfigFiles lists. Problems come back as Errors.
func Load(path string) (*Config, error) {
	files, dir, err := configFiles(path)
	if err != nil {
		return nil, err
	}
	if !dir {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("load config: %w", err)
		}
		return LoadBytes(path, data)
	}
	m := newMerger()
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("load config: %w", err)
		}
		if root := m.parse(f, data); root != nil {
			m.merge(m.root, root, f, configType, "")
		}
	}
	return m.finish(m.root, path, files)
}

// LoadBytes reads one in-memory config file; name is used in errors and to
// resolve relative git paths.
func LoadBytes(name string, data []byte) (*Config, error) {
	m := newMerger()
	root := m.parse(name, data)
	if root == nil {
		root = &yaml.Node{Kind: yaml.MappingNode, Line: 1, Column: 1}
	}
	return m.finish(root, name, []string{name})
}

// ConfigFiles lists the files Load reads for path, in the order it reads
// them: path itself when it is a file; for a directory every *.yaml and *.yml
// file under it, recursively, sorted by path, skipping names that start with
// a dot (so a .git directory is ignored). A directory without any is
// ErrNoFiles. It is exported so that whoever fingerprints a config (the
// master noticing a local edit) looks at exactly what Load would read.
func ConfigFiles(path string) ([]string, error) {
	files, _, err := configFiles(path)
	return files, err
}

// configFiles is ConfigFiles, also telling whether path is a directory, which
// decides whether Load merges.
func configFiles(path string) (files []string, dir bool, err error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, false, fmt.Errorf("load config: %w", err)
	}
	if !info.IsDir() {
		return []string{path}, false, nil
	}
	err = filepath.WalkDir(path, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != path && strings.HasPrefix(e.Name(), ".") {
			if e.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !e.IsDir() && (strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return nil, true, fmt.Errorf("load config directory: %w", err)
	}
	if len(files) == 0 {
		return nil, true, fmt.Errorf("load config directory %s: %w", path, ErrNoFiles)
	}
	// WalkDir's order is per directory (a/x.yaml before a.yaml); merging in
	// plain path order is what the docs promise.
	slices.Sort(files)
	return files, true, nil
}

// ErrNoFiles is returned by Load and ConfigFiles for a directory without
// config files.
var ErrNoFiles = errors.New("no *.yaml or *.yml files")

var configType = reflect.TypeFor[Config]()

// merger parses files and merges their trees: lists concatenate, mappings of
// schema structs merge key by key, and anything else set in two files is an
// error naming both.
type merger struct {
	d         *decoder
	root      *yaml.Node
	synthetic map[*yaml.Node]bool
}

func newMerger() *merger {
	root := &yaml.Node{Kind: yaml.MappingNode, Line: 1, Column: 1}
	return &merger{d: newDecoder(""), root: root, synthetic: map[*yaml.Node]bool{root: true}}
}

var yamlErrLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parse returns the file's top-level mapping, or nil when the file is empty
// or unusable (the problem is recorded).
func (m *merger) parse(file string, data []byte) *yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil
		}
		m.yamlError(file, err)
		return nil
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		m.d.errs = append(m.d.errs, &Error{File: file, Line: extra.Line, Column: extra.Column,
			Msg: "a second YAML document (---) in one file", Hint: "put each document in its own file of a config directory"})
		return nil
	} else if !errors.Is(err, io.EOF) {
		m.yamlError(file, err)
		return nil
	}
	if len(doc.Content) == 0 {
		return nil
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" {
		return nil
	}
	if root.Kind != yaml.MappingNode {
		m.d.errs = append(m.d.errs, &Error{File: file, Line: root.Line, Column: root.Column,
			Msg: "expected a mapping of top-level keys (master, targets, components, ...), got " + describe(root)})
		return nil
	}
	return root
}

func (m *merger) yamlError(file string, err error) {
	e := &Error{File: file, Msg: strings.TrimPrefix(err.Error(), "yaml: ")}
	if g := yamlErrLine.FindStringSubmatch(err.Error()); g != nil {
		e.Line, _ = strconv.Atoi(g[1])
		e.Msg = g[2]
	}
	if strings.Contains(e.Msg, "found character that cannot start any token") {
		e.Hint = "YAML indents with spaces, not tabs"
	}
	m.d.errs = append(m.d.errs, e)
}

func (m *merger) finish(root *yaml.Node, name string, files []string) (*Config, error) {
	cfg := &Config{Files: files}
	m.d.file = name
	m.d.value(root, reflect.ValueOf(cfg).Elem(), "")
	if err := m.d.errs.err(); err != nil {
		return nil, err
	}
	cfg.pos = m.d.pos
	cfg.applyDefaults()
	return cfg, nil
}

func (m *merger) errorf(file string, n *yaml.Node, path, hint, format string, args ...any) {
	m.d.errs = append(m.d.errs, &Error{File: file, Line: n.Line, Column: n.Column,
		Path: path, Msg: fmt.Sprintf(format, args...), Hint: hint})
}

func (m *merger) fileOf(n *yaml.Node, def string) string {
	if f, ok := m.d.origin[n]; ok {
		return f
	}
	return def
}

func (m *merger) adopt(n *yaml.Node, file string) {
	if _, ok := m.d.origin[n]; !ok {
		m.d.origin[n] = file
	}
}

// own returns a synthetic copy of a node from one file so that merging into it
// never changes a node an alias elsewhere may share.
func (m *merger) own(n *yaml.Node, file string) *yaml.Node {
	if m.synthetic[n] {
		return n
	}
	c := &yaml.Node{Kind: n.Kind, Tag: n.Tag, Line: n.Line, Column: n.Column}
	c.Content = slices.Clone(n.Content)
	for _, k := range c.Content {
		m.adopt(k, file)
	}
	m.synthetic[c] = true
	m.d.origin[c] = file
	return c
}

func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 100; i++ {
		n = n.Alias
	}
	return n
}

// merge adds src's pairs (from file) into the synthetic mapping dst of schema
// type t.
func (m *merger) merge(dst, src *yaml.Node, file string, t reflect.Type, path string) {
	var fields *structFields
	if t.Kind() == reflect.Struct {
		fields = fieldsOf(t)
	}
	for i := 0; i+1 < len(src.Content); i += 2 {
		k, v := src.Content[i], src.Content[i+1]
		at := -1
		for j := 0; j+1 < len(dst.Content); j += 2 {
			if dk := dst.Content[j]; dk.Kind == yaml.ScalarNode && k.Kind == yaml.ScalarNode && dk.Value == k.Value {
				at = j
				break
			}
		}
		if at < 0 || k.Kind != yaml.ScalarNode {
			m.adopt(k, file)
			m.adopt(v, file)
			dst.Content = append(dst.Content, k, v)
			continue
		}
		dk, dv := dst.Content[at], dst.Content[at+1]
		prevFile := m.fileOf(dk, file)
		kp := join(path, k.Value)
		if prevFile == file {
			// The decoder reports keys repeated within one file.
			m.adopt(k, file)
			m.adopt(v, file)
			dst.Content = append(dst.Content, k, v)
			continue
		}
		var ft reflect.Type
		if fields != nil {
			if idx, ok := fields.index[k.Value]; ok {
				ft = t.Field(idx).Type
			}
		}
		sv, pv := deref(v), deref(dv)
		switch {
		case isNull(pv):
			m.d.origin[k], m.d.origin[v] = file, file
			dst.Content[at], dst.Content[at+1] = k, v
		case isNull(sv):
			// An empty value in a later file adds nothing.
		case ft != nil && ft.Kind() == reflect.Slice && sv.Kind == yaml.SequenceNode && pv.Kind == yaml.SequenceNode:
			merged := m.own(pv, prevFile)
			for _, item := range sv.Content {
				m.adopt(item, file)
			}
			merged.Content = append(merged.Content, sv.Content...)
			dst.Content[at+1] = merged
		case ft != nil && (ft.Kind() == reflect.Struct || ft.Kind() == reflect.Map) && sv.Kind == yaml.MappingNode && pv.Kind == yaml.MappingNode:
			merged := m.own(pv, prevFile)
			m.merge(merged, sv, file, ft, kp)
			dst.Content[at+1] = merged
		case t.Kind() == reflect.Map:
			m.errorf(file, k, kp, "rename one of them", "%q is also defined in %s:%d", k.Value, prevFile, dk.Line)
		default:
			m.errorf(file, k, kp, "set it in one file only", "also set in %s:%d", prevFile, dk.Line)
		}
	}
}

// resolveGit makes a relative filesystem path in a component's git: value
// relative to the directory of the file it was written in, so a config and
// the repositories next to it can move together. URLs (scheme://) and
// scp-like addresses (user@host:path, host:path) are left alone.
func resolveGit(git, file string) string {
	if strings.Contains(git, "://") || filepath.IsAbs(git) {
		return git
	}
	if colon := strings.IndexByte(git, ':'); colon > 0 && !strings.Contains(git[:colon], "/") {
		return git
	}
	p := filepath.Join(filepath.Dir(file), git)
	if abs, err := filepath.Abs(p); err == nil {
		return abs
	}
	return p
}
