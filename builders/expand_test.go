package builders

import (
	"errors"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

const header = `
targets:
  - distro: debian
    versions: [bullseye, bookworm]
    arches: [amd64, arm64]
    kind: pbuilder
    tags: [debian]
  - distro: centos
    versions: ["8", "9"]
    arches: [x86_64]
    kind: mock
repos:
  channels: [{name: dev, key: k}]
`

func mustMatrix(t *testing.T, yaml string) *Matrix {
	t.Helper()
	cfg, err := LoadBytes("test.yaml", []byte(header+yaml))
	if err != nil {
		t.Fatalf("LoadBytes: %v", err)
	}
	m, err := Expand(cfg)
	if err != nil {
		t.Fatalf("Expand: %v", err)
	}
	return m
}

func builderNames(bs []*Builder) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = b.Name
	}
	return out
}

func TestFilters(t *testing.T) {
	tests := []struct {
		name, filters string
		want          []string // targets of the component's builders
	}{
		{"none", "", []string{"centos/8/x86_64", "centos/9/x86_64", "debian/bookworm/amd64", "debian/bookworm/arm64", "debian/bullseye/amd64", "debian/bullseye/arm64"}},
		{"only distro", "only: [{distro: centos}]", []string{"centos/8/x86_64", "centos/9/x86_64"}},
		{"only any of two", "only: [{distro: centos, version: \"9\"}, {arch: arm64}]", []string{"centos/9/x86_64", "debian/bookworm/arm64", "debian/bullseye/arm64"}},
		{"exclude glob", "exclude: [{version: \"b*\"}]", []string{"centos/8/x86_64", "centos/9/x86_64"}},
		{"only and exclude", "only: [{distro: debian}]\n    exclude: [{version: bullseye, arch: \"a?m64\"}]", []string{"debian/bookworm/amd64", "debian/bookworm/arm64", "debian/bullseye/amd64"}},
		{"class glob", "only: [{arch: \"[ax]*\"}]", []string{"centos/8/x86_64", "centos/9/x86_64", "debian/bookworm/amd64", "debian/bookworm/arm64", "debian/bullseye/amd64", "debian/bullseye/arm64"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := mustMatrix(t, "components:\n  - name: a\n    git: x\n    "+tt.filters+"\n")
			var got []string
			for _, b := range m.ComponentBuilders("a") {
				got = append(got, b.Target.String())
			}
			slices.Sort(got)
			if !slices.Equal(got, tt.want) {
				t.Errorf("targets = %v, want %v", got, tt.want)
			}
		})
	}
}

const chain = `
components:
  - {name: base, git: x, rebuild: transitive}
  - {name: mid, git: x, depends: [base]}
  - {name: top, git: x, depends: [mid], rebuild: none}
  - {name: side, git: x, depends: [base], only: [{distro: debian, version: bookworm, arch: amd64}]}
  - {name: solo, git: x}
`

func TestDependencyGraph(t *testing.T) {
	m := mustMatrix(t, chain)
	if got := len(m.Builders); got != 4*6+1 {
		t.Fatalf("builders = %d, want 25", got)
	}
	pos := map[string]int{}
	for i, b := range m.Builders {
		pos[b.Name] = i
		for _, d := range b.Deps {
			db, ok := m.Builder(d)
			if !ok || db.Target != b.Target {
				t.Errorf("%s depends on %s, not on the same target", b.Name, d)
			}
			if pos[d] >= i && d != m.Builders[0].Name {
				t.Errorf("%s comes before its dependency %s", b.Name, d)
			}
		}
	}
	checkOrder(t, m)
	if got := m.Edges(); got != 6+6+1 {
		t.Errorf("edges = %d, want 13", got)
	}
	if got, want := m.LongestChain(), []string{"base@centos/8/x86_64", "mid@centos/8/x86_64", "top@centos/8/x86_64"}; !slices.Equal(got, want) {
		t.Errorf("longest chain = %v, want %v", got, want)
	}
	b, _ := m.Builder("mid@debian/bookworm/amd64")
	if !slices.Equal(b.Deps, []string{"base@debian/bookworm/amd64"}) || !slices.Equal(b.Dependents, []string{"top@debian/bookworm/amd64"}) {
		t.Errorf("mid deps %v dependents %v", b.Deps, b.Dependents)
	}
	if got, want := m.DepsClosure("top@debian/bookworm/amd64"), []string{"base@debian/bookworm/amd64", "mid@debian/bookworm/amd64"}; !slices.Equal(got, want) {
		t.Errorf("DepsClosure = %v, want %v", got, want)
	}
	if got, want := m.DependentsClosure("base@debian/bookworm/amd64"), []string{"mid@debian/bookworm/amd64", "side@debian/bookworm/amd64", "top@debian/bookworm/amd64"}; !slices.Equal(got, want) {
		t.Errorf("DependentsClosure = %v, want %v", got, want)
	}
	if m.DepsClosure("nope") != nil {
		t.Error("DepsClosure of an unknown builder is not nil")
	}
}

func TestTopologicalOrderTiesByName(t *testing.T) {
	m := mustMatrix(t, `
components:
  - {name: zed, git: x, only: [{distro: centos, version: "9"}]}
  - {name: app, git: x, depends: [zed, lib], only: [{distro: centos, version: "9"}]}
  - {name: lib, git: x, only: [{distro: centos, version: "9"}]}
`)
	want := []string{"lib@centos/9/x86_64", "zed@centos/9/x86_64", "app@centos/9/x86_64"}
	if got := builderNames(m.Builders); !slices.Equal(got, want) {
		t.Errorf("order = %v, want %v", got, want)
	}
}

func TestRebuilds(t *testing.T) {
	m := mustMatrix(t, strings.Replace(chain, "depends: [base]}", "depends: [base], rebuild: direct}", 1))
	count := func(bs []*Builder, comp string) int {
		n := 0
		for _, b := range bs {
			if b.Component.Name == comp {
				n++
			}
		}
		return n
	}
	tests := []struct {
		component string
		want      map[string]int
	}{
		{"base", map[string]int{"base": 6, "mid": 6, "top": 6, "side": 1}}, // transitive
		{"mid", map[string]int{"mid": 6, "top": 6}},                        // direct
		{"top", map[string]int{"top": 6}},                                  // none
		{"solo", map[string]int{"solo": 6}},                                // default: direct, no dependents
	}
	for _, tt := range tests {
		t.Run(tt.component, func(t *testing.T) {
			got := m.Rebuilds(tt.component)
			total := 0
			for comp, n := range tt.want {
				if c := count(got, comp); c != n {
					t.Errorf("%d builders of %s, want %d", c, comp, n)
				}
				total += n
			}
			if len(got) != total {
				t.Errorf("Rebuilds(%s) = %v", tt.component, builderNames(got))
			}
			for i := 1; i < len(got); i++ {
				if m.order[got[i-1].Name] > m.order[got[i].Name] {
					t.Errorf("not in topological order: %v", builderNames(got))
				}
			}
		})
	}
	if m.Rebuilds("nope") != nil {
		t.Error("Rebuilds of an unknown component is not nil")
	}
}

func TestStepsAndTags(t *testing.T) {
	m := mustMatrix(t, `
templates:
  test: [{type: shell, command: [make, check]}]
  full: [{use: test}, {type: shell, name: lint, script: make lint}]
components:
  - name: a
    git: x
    tags: [big, debian]
    only: [{distro: debian, version: bookworm, arch: amd64}]
  - name: b
    git: x
    steps: [{type: checkout}, {use: full}, {use: test}, {type: upload}]
    only: [{distro: centos, version: "9"}]
  - name: c
    git: x
    kind: nfpm
    collapse: false
    priority: 7
    only: [{distro: centos, version: "8"}]
  - name: d
    git: x
    kind: shell
    steps: [{type: shell, script: ./build.sh}]
    only: [{distro: centos, version: "8"}]
`)
	tests := []struct {
		builder  string
		kind     string
		steps    []string
		tags     []string
		collapse bool
		priority int
	}{
		// Native kinds need the target's arch too; nfpm and shell run anywhere.
		{"a@debian/bookworm/amd64", "pbuilder", []string{"checkout", "source", "pbuilder", "lintian", "upload"}, []string{"amd64", "big", "debian", "pbuilder"}, true, 0},
		{"b@centos/9/x86_64", "mock", []string{"checkout", "shell", "lint", "shell-2", "upload"}, []string{"mock", "x86_64"}, true, 0},
		{"c@centos/8/x86_64", "nfpm", []string{"checkout", "nfpm", "upload"}, nil, false, 7},
		{"d@centos/8/x86_64", "shell", []string{"checkout", "shell"}, nil, true, 0},
	}
	for _, tt := range tests {
		b, ok := m.Builder(tt.builder)
		if !ok {
			t.Fatalf("no builder %s", tt.builder)
		}
		var steps []string
		for _, s := range b.Steps {
			steps = append(steps, s.Name)
		}
		if b.Kind != tt.kind || !slices.Equal(steps, tt.steps) || !slices.Equal(b.Tags, tt.tags) || b.Collapse != tt.collapse || b.Priority != tt.priority {
			t.Errorf("%s: kind %s steps %v tags %v collapse %t priority %d; want %s %v %v %t %d",
				tt.builder, b.Kind, steps, b.Tags, b.Collapse, b.Priority, tt.kind, tt.steps, tt.tags, tt.collapse, tt.priority)
		}
	}
	b, _ := m.Builder("b@centos/9/x86_64")
	if got := b.Steps[1].Command; !slices.Equal(got, []string{"make", "check"}) {
		t.Errorf("template step command = %v", got)
	}
}

func TestDefaults(t *testing.T) {
	m := mustMatrix(t, "components: [{name: a, git: x}]\nworkers: [{name: w}]\n")
	cfg := m.Config
	if cfg.Master.HTTP != ":8010" || cfg.Master.NATS != ":4222" || cfg.Master.HeartbeatTimeout.D().Seconds() != 30 || cfg.Master.MaxAttempts != 3 {
		t.Errorf("master defaults = %+v", cfg.Master)
	}
	c, _ := m.Component("a")
	if c.Rebuild != RebuildDirect || !slices.Equal(c.Branches, []string{"main"}) {
		t.Errorf("component defaults: rebuild %q branches %v", c.Rebuild, c.Branches)
	}
	if cfg.Workers[0].Slots != 1 {
		t.Errorf("worker slots default = %d", cfg.Workers[0].Slots)
	}
	if cfg.Targets[0].Format != FormatApt || cfg.Targets[1].Format != FormatYum {
		t.Errorf("formats not implied by kind: %q %q", cfg.Targets[0].Format, cfg.Targets[1].Format)
	}
}

func TestGitPaths(t *testing.T) {
	dir, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ git, want string }{
		{"src/a", filepath.Join(dir, "src/a")},
		{"../a", filepath.Join(filepath.Dir(dir), "a")},
		{"/srv/git/a", "/srv/git/a"},
		{"https://git.example.com/a.git", "https://git.example.com/a.git"},
		{"file:///srv/a", "file:///srv/a"},
		{"git@git.example.com:farm/a.git", "git@git.example.com:farm/a.git"},
		{"example.com:a.git", "example.com:a.git"},
		{"./dir:with/colon", filepath.Join(dir, "dir:with/colon")},
	}
	for _, tt := range tests {
		cfg, err := LoadBytes("testdata/farm.yaml", []byte("components: [{name: a, git: '"+tt.git+"'}]"))
		if err != nil {
			t.Fatal(err)
		}
		if got := cfg.Components[0].Git; got != tt.want {
			t.Errorf("git %q resolved to %q, want %q", tt.git, got, tt.want)
		}
	}
}

func TestDirectoryMerge(t *testing.T) {
	dirCfg, dirM, err := LoadMatrix("testdata/merge/ok")
	if err != nil {
		t.Fatal(err)
	}
	fileCfg, fileM, err := LoadMatrix("testdata/merge/ok.yaml")
	if err != nil {
		t.Fatal(err)
	}
	wantFiles := []string{"testdata/merge/ok/00-farm.yaml", "testdata/merge/ok/components/libgrace.yaml", "testdata/merge/ok/components/opencore.yml"}
	if !slices.Equal(dirCfg.Files, wantFiles) {
		t.Errorf("files = %v, want %v", dirCfg.Files, wantFiles)
	}
	// Components are concatenated in path order; the single file lists
	// them in the same order, so the configs must be equal.
	dirCfg.Files, fileCfg.Files, dirCfg.pos, fileCfg.pos = nil, nil, nil, nil
	if !reflect.DeepEqual(dirCfg, fileCfg) {
		t.Errorf("merged directory differs from the equivalent file:\n%+v\n%+v", dirCfg, fileCfg)
	}
	if d := Diff(dirM, fileM); !d.Empty() {
		t.Errorf("matrices differ: %+v", d)
	}
}

func TestMergedPositions(t *testing.T) {
	cfg, err := Load("testdata/merge/ok")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path string
		want Pos
	}{
		{"components[1].depends", Pos{"testdata/merge/ok/components/opencore.yml", 11, 5}},
		{"components[0].git", Pos{"testdata/merge/ok/components/libgrace.yaml", 3, 5}},
		{"master.http", Pos{"testdata/merge/ok/components/opencore.yml", 2, 3}},
		{"master.title", Pos{"testdata/merge/ok/00-farm.yaml", 2, 3}},
		{"repos.channels[0]", Pos{"testdata/merge/ok/00-farm.yaml", 12, 7}},
		{"repos.channels[1]", Pos{"testdata/merge/ok/components/opencore.yml", 14, 7}},
		{"targets[1].kind", Pos{"testdata/merge/ok/components/opencore.yml", 7, 5}},
		{"templates.test[0].command", Pos{"testdata/merge/ok/00-farm.yaml", 9, 24}},
	}
	for _, tt := range tests {
		if got, ok := cfg.Position(tt.path); !ok || got != tt.want {
			t.Errorf("Position(%s) = %v, %t; want %v", tt.path, got, ok, tt.want)
		}
	}
}

func TestDiff(t *testing.T) {
	old := mustMatrix(t, chain)
	changed := strings.Replace(chain, "{name: top, git: x,", "{name: top, git: y,", 1)
	changed = strings.Replace(changed, "  - {name: solo, git: x}\n", "  - {name: solo, git: x, only: [{distro: centos}]}\n  - {name: fresh, git: x, only: [{distro: centos, version: \"8\"}]}\n", 1)
	d := Diff(old, mustMatrix(t, changed))
	want := MatrixDiff{
		Added:   []string{"fresh@centos/8/x86_64"},
		Removed: []string{"solo@debian/bookworm/amd64", "solo@debian/bookworm/arm64", "solo@debian/bullseye/amd64", "solo@debian/bullseye/arm64"},
		Changed: []string{"top@centos/8/x86_64", "top@centos/9/x86_64", "top@debian/bookworm/amd64", "top@debian/bookworm/arm64", "top@debian/bullseye/amd64", "top@debian/bullseye/arm64"},
	}
	if !reflect.DeepEqual(d, want) {
		t.Errorf("Diff = %+v\nwant %+v", d, want)
	}
	if got := Diff(nil, old); len(got.Added) != len(old.Builders) {
		t.Errorf("Diff from nil adds %d, want %d", len(got.Added), len(old.Builders))
	}
	if !Diff(old, mustMatrix(t, chain)).Empty() {
		t.Error("two loads of one config differ")
	}
}

func TestSubjectToken(t *testing.T) {
	tests := []struct{ in, want string }{
		{"opencore@debian/bookworm/amd64", "opencore_40debian_2fbookworm_2famd64"},
		{"libc++.1@centos/9/x86_64", "libc_2b_2b_2e1_40centos_2f9_2fx86_5f64"},
		{"a_b", "a_5fb"},
	}
	for _, tt := range tests {
		got := SubjectToken(tt.in)
		if got != tt.want {
			t.Errorf("SubjectToken(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if strings.ContainsAny(got, ".*> \t/@+") {
			t.Errorf("SubjectToken(%q) = %q is not NATS-safe", tt.in, got)
		}
	}
	if SubjectToken("a.b") == SubjectToken("a_2eb") {
		t.Error("SubjectToken is not injective")
	}
}

func TestHandBuiltConfig(t *testing.T) {
	cfg := &Config{
		Targets:    []Distro{{Distro: "debian", Versions: []string{"bookworm"}, Arches: []string{"amd64"}, Kind: "dpkg"}},
		Components: []Component{{Name: "a", Git: "x", Depends: []string{"b"}}},
		Repos:      Repos{Channels: []Channel{{Name: "dev", Key: "k"}}},
	}
	_, err := Expand(cfg)
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != 1 {
		t.Fatalf("Expand = %v, want one error", err)
	}
	if got, want := errs[0].Error(), `components[0].depends[0]: unknown dependency "b"`; got != want {
		t.Errorf("error = %q, want %q", got, want)
	}
	cfg.Components[0].Depends = nil
	m, err := Expand(cfg)
	if err != nil || len(m.Builders) != 1 || !slices.Equal(m.Builders[0].Tags, []string{"amd64", "dpkg-buildpackage"}) {
		t.Fatalf("Expand = %v, %v", m, err)
	}
}

func TestErrorFormat(t *testing.T) {
	tests := []struct {
		e    Error
		want string
	}{
		{Error{File: "f.yaml", Line: 3, Column: 7, Path: "components[0].depends", Msg: "bad", Hint: "fix"}, "f.yaml:3:7: components[0].depends: bad (hint: fix)"},
		{Error{File: "f.yaml", Line: 3, Msg: "bad"}, "f.yaml:3: bad"},
		{Error{File: "f.yaml", Path: "repos", Msg: "bad"}, "f.yaml: repos: bad"},
		{Error{Msg: "bad"}, "bad"},
	}
	for _, tt := range tests {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}

func TestSuggest(t *testing.T) {
	keys := []string{"depends", "exclude", "only", "password_hash", "priority"}
	tests := []struct{ got, want string }{
		{"depend", "depends"},
		{"Depends", "depends"},
		{"exlcude", "exclude"},
		{"hash", "password_hash"},
		{"colour", ""},
		{"x", ""},
	}
	for _, tt := range tests {
		want := ""
		if tt.want != "" {
			want = "did you mean `" + tt.want + "`?"
		}
		if got := suggest(tt.got, keys); got != want {
			t.Errorf("suggest(%q) = %q, want %q", tt.got, got, want)
		}
	}
}

// checkOrder asserts that m.Builders is what Kahn's algorithm yields when it
// always takes the ready builder with the smallest name.
func checkOrder(t *testing.T, m *Matrix) {
	t.Helper()
	pos := map[string]int{}
	for i, b := range m.Builders {
		pos[b.Name] = i
	}
	readyAt := make([]int, len(m.Builders))
	for i, b := range m.Builders {
		for _, d := range b.Deps {
			p, ok := pos[d]
			if !ok || p >= i {
				t.Fatalf("%s at %d before its dependency %s", b.Name, i, d)
			}
			readyAt[i] = max(readyAt[i], p+1)
		}
	}
	for i, b := range m.Builders {
		for j := i + 1; j < len(m.Builders); j++ {
			if readyAt[j] <= i && m.Builders[j].Name < b.Name {
				t.Fatalf("%s taken at %d while %s was ready", b.Name, i, m.Builders[j].Name)
			}
		}
	}
}

func TestAnchorsAndMergeKeys(t *testing.T) {
	m := mustMatrix(t, `
components:
  - &base
    name: a
    git: x
    priority: 3
    tags: [big]
    only: &deb [{distro: debian}]
  - <<: *base
    name: b
    priority: 5
  - {<<: [{name: ignored, kind: nfpm}, *base], name: c, only: *deb}
`)
	tests := []struct {
		name     string
		priority int
		kind     string
		builders int
	}{
		{"a", 3, "pbuilder", 4},
		{"b", 5, "pbuilder", 4},
		{"c", 3, "nfpm", 4},
	}
	for _, tt := range tests {
		c, ok := m.Component(tt.name)
		if !ok {
			t.Fatalf("no component %s", tt.name)
		}
		bs := m.ComponentBuilders(tt.name)
		if c.Priority != tt.priority || c.Git != filepath.Join(mustAbs(t, "."), "x") || !slices.Equal(c.Tags, []string{"big"}) || len(bs) != tt.builders || bs[0].Kind != tt.kind {
			t.Errorf("%s: %+v with %d builders of kind %s", tt.name, c, len(bs), bs[0].Kind)
		}
	}
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	abs, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// A native kind's builders need the target's arch; an nfpm builder of the
// same component and targets runs anywhere.
func TestNativeKindsRequireTheTargetsArch(t *testing.T) {
	cfg, err := LoadBytes("test.yaml", []byte(`
targets:
  - {distro: debian, versions: [bookworm], arches: [amd64, arm64], kind: pbuilder}
  - {distro: centos, versions: ["9"], arches: [x86_64, aarch64], kind: nfpm, format: yum}
components:
  - {name: a, git: x}
repos:
  channels: [{name: dev, key: k}]
`))
	if err != nil {
		t.Fatal(err)
	}
	m, err := Expand(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		builder string
		tags    []string
	}{
		{"a@debian/bookworm/amd64", []string{"amd64", "pbuilder"}},
		{"a@debian/bookworm/arm64", []string{"arm64", "pbuilder"}},
		{"a@centos/9/x86_64", nil},
		{"a@centos/9/aarch64", nil},
	} {
		b, ok := m.Builder(tc.builder)
		if !ok {
			t.Fatalf("no builder %s", tc.builder)
		}
		if !slices.Equal(b.Tags, tc.tags) {
			t.Errorf("%s requires %v, want %v", tc.builder, b.Tags, tc.tags)
		}
	}
}
