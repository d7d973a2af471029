package builders

import (
	"fmt"
	"strings"
	"testing"
)

// Each case is small to write but would expand to an enormous config; the
// loader must refuse it with a clear error instead of running out of time or
// memory.
func TestLimits(t *testing.T) {
	// 300 aliases of a component whose depends list has 400 entries: 120,000
	// values from a 3 kB file.
	bomb := fmt.Sprintf("components:\n  - &c {name: x, git: x, depends: [%s]}\n  - %s\n",
		strings.TrimSuffix(strings.Repeat("y, ", 400), ", "), strings.Repeat("*c\n  - ", 299)+"*c")

	var versions, arches []string
	for i := range 300 {
		versions = append(versions, fmt.Sprint("v", i))
	}
	for i := range 200 {
		arches = append(arches, fmt.Sprint("a", i))
	}
	huge := fmt.Sprintf("targets: [{distro: d, kind: dpkg, versions: [%s], arches: [%s]}]\ncomponents: [{name: x, git: x}]\nrepos: {channels: [{name: dev, key: k}]}\n",
		strings.Join(versions, ", "), strings.Join(arches, ", "))

	var tmpl strings.Builder
	tmpl.WriteString("targets: [{distro: d, kind: shell, format: apt, versions: [v], arches: [a]}]\nrepos: {channels: [{name: dev, key: k}]}\ntemplates:\n  t0: [{type: shell, script: x}]\n")
	for i := 1; i <= 8; i++ {
		fmt.Fprintf(&tmpl, "  t%d: [%s]\n", i, strings.TrimSuffix(strings.Repeat(fmt.Sprintf("{use: t%d}, ", i-1), 10), ", "))
	}
	tmpl.WriteString("components: [{name: x, git: x, steps: [{use: t8}]}]\n")

	tests := []struct {
		name, yaml, want string
	}{
		{"aliases", bomb, "too many values (more than 100000)"},
		{"matrix", huge, "more than 50000 builders"},
		{"template fan-out", tmpl.String(), "more than 500 steps once templates are spliced in"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := LoadBytes("limits.yaml", []byte(tt.yaml))
			if err == nil {
				_, err = Expand(cfg)
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want %q", err, tt.want)
			}
		})
	}
}
