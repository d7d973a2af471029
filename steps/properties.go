package steps

import (
	"fmt"
	"maps"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/kiln-build/kiln/protocol"
)

// Properties are a build's named values. Steps read them through ${prop.NAME}
// and set them from their output; the worker reports them with each event.
type Properties struct {
	mu sync.Mutex
	m  map[string]string
}

// NewProperties seeds a build's properties from its job: the job's own
// properties win over the derived ones, so a config can override them.
func NewProperties(job protocol.Job, worker string) *Properties {
	m := map[string]string{
		"build":     job.Build,
		"attempt":   strconv.Itoa(job.Attempt),
		"builder":   job.Builder,
		"component": job.Component,
		"target":    job.Target,
		"format":    job.Format,
		"branch":    job.Branch,
		"worker":    worker,
	}
	if parts := strings.Split(job.Target, "/"); len(parts) == 3 {
		m["distro"], m["distro_version"], m["arch"] = parts[0], parts[1], parts[2]
	}
	maps.Copy(m, job.Properties)
	return &Properties{m: m}
}

// Get returns a property and whether it is set.
func (p *Properties) Get(name string) (string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	v, ok := p.m[name]
	return v, ok
}

// Set sets a property.
func (p *Properties) Set(name, value string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.m[name] = value
}

// Snapshot returns a copy of all properties.
func (p *Properties) Snapshot() map[string]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.m)
}

var propRef = regexp.MustCompile(`\$\{prop\.([A-Za-z0-9_.-]+)\}`)

// Expand replaces every ${prop.NAME} in s. An undefined property is an error
// rather than an empty string: a version silently rendered as "" makes a
// broken package, not a failed build.
func (p *Properties) Expand(s string) (string, error) {
	var missing []string
	out := propRef.ReplaceAllStringFunc(s, func(ref string) string {
		name := propRef.FindStringSubmatch(ref)[1]
		v, ok := p.Get(name)
		if !ok {
			missing = append(missing, name)
		}
		return v
	})
	if missing != nil {
		return "", fmt.Errorf("expand %q: undefined property %s", s, strings.Join(missing, ", "))
	}
	return out, nil
}

// ExpandAll expands every string of ss; nil stays nil.
func (p *Properties) ExpandAll(ss []string) ([]string, error) {
	if ss == nil {
		return nil, nil
	}
	out := make([]string, len(ss))
	for i, s := range ss {
		v, err := p.Expand(s)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

// ExpandMap expands every value of m; nil stays nil.
func (p *Properties) ExpandMap(m map[string]string) (map[string]string, error) {
	if m == nil {
		return nil, nil
	}
	out := make(map[string]string, len(m))
	for k, s := range m {
		v, err := p.Expand(s)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		out[k] = v
	}
	return out, nil
}
