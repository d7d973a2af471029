package builders

import (
	"reflect"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/protocol"
)

// TestWhenReachesTheBuilderInWrittenOrder: conditions keep the order they
// were written in (the first that fails names the skip), not: sets Not, and
// a use: step's conditions go before each template step's own without
// changing the template for its other uses.
func TestWhenReachesTheBuilderInWrittenOrder(t *testing.T) {
	m := mustMatrix(t, `
templates:
  deb12:
    - name: twelve
      type: shell
      script: echo twelve
      when: {property.debian_version: '^12\.'}
components:
  - name: x
    git: x
    steps:
      - {type: checkout}
      - name: version
        type: shell
        command: [cat, /etc/debian_version]
        set_property: {debian_version: '^(\S+)$'}
      - use: deb12
        when: {distro: [debian]}
      - use: deb12
      - name: tests
        type: shell
        script: make check
        when:
          version: ["9", bookworm]
          not: {arch: [arm64], property.skip_tests: ''}
          format: apt
`)
	b, ok := m.Builder("x@debian/bookworm/amd64")
	if !ok {
		t.Fatal("no builder x@debian/bookworm/amd64")
	}
	got := map[string]When{}
	for _, s := range b.Steps {
		got[s.Name] = s.When
	}
	want := map[string]When{
		"checkout": nil,
		"version":  nil,
		"twelve": {
			{Key: "distro", In: []string{"debian"}},
			{Key: "property.debian_version", Match: `^12\.`},
		},
		"twelve-2": {{Key: "property.debian_version", Match: `^12\.`}},
		"tests": {
			{Key: "version", In: []string{"9", "bookworm"}},
			{Key: "arch", In: []string{"arm64"}, Not: true},
			{Key: "property.skip_tests", Match: "", Not: true},
			{Key: "format", Match: "apt"},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("steps' when:\n%v\nwant\n%v", got, want)
	}
	if tpl := m.Config.Templates["deb12"][0].When; len(tpl) != 1 {
		t.Errorf("use: changed the template itself: %v", tpl)
	}
}

// TestWhenChecks: what a step's conditions may say, through YAML and through
// configs built in code (which skip the decoder). Every condition of a
// config that loads passes protocol.Condition.Validate, so the worker never
// has to refuse one.
func TestWhenChecks(t *testing.T) {
	for _, tt := range []struct {
		name    string
		when    When   // built in code; used when yaml is ""
		yaml    string // the step's when: value
		wantErr string // "" when the config must load
	}{
		{name: "target lists", yaml: `{distro: [debian, centos], version: ["9", bullseye], arch: [x86_64], format: [yum]}`},
		{name: "target regexps", yaml: `{version: '^bull', arch: 'amd|arm'}`},
		{name: "property regexp", yaml: `{property.debian_version: '^12\.'}`},
		{name: "property set at all", yaml: `{property.debian_version: ''}`},
		{name: "property any of", yaml: `{property.flavour: [full, lite]}`},
		{name: "a number is taken as written", yaml: `{version: 9}`},
		{name: "not", yaml: `{not: {distro: [centos], property.skip: '^yes$'}}`},
		{name: "null when is no when", yaml: `~`},
		{name: "unknown field", yaml: `{kind: [shell]}`, wantErr: `when.kind: unknown condition "kind"`},
		{name: "distro typo", yaml: `{distro: [debain]}`, wantErr: "when.distro[0]: no target has distro \"debain\" (hint: did you mean `debian`?)"},
		{name: "regexp over targets matching none", yaml: `{arch: '^ppc'}`, wantErr: `no target's arch matches "^ppc" (hint: targets have arch amd64, arm64, x86_64)`},
		{name: "bad property regexp", yaml: `{property.v: '(x'}`, wantErr: "when.property.v: bad regular expression"},
		{name: "property without a name", yaml: `{property.: x}`, wantErr: "property name is missing"},
		{name: "empty", yaml: `{}`, wantErr: "when: no conditions"},
		{name: "code: list and regexp", when: When{{Key: "distro", In: []string{"debian"}, Match: "deb"}}, wantErr: "both a list and a regular expression"},
		{name: "code: unknown key", when: When{{Key: "colour", Match: "x"}}, wantErr: `unknown condition "colour"`},
		{name: "code: empty list", when: When{{Key: "arch", In: []string{}}}, wantErr: "an empty list matches nothing"},
		{name: "code: fine", when: When{{Key: "arch", In: []string{"amd64"}}, {Key: "property.x", Match: "y", Not: true}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var cfg *Config
			var err error
			if tt.yaml != "" {
				src := header + "components:\n  - name: x\n    git: x\n    steps: [{type: checkout}, {type: shell, script: make, when: " + tt.yaml + "}]\n"
				cfg, err = LoadBytes("test.yaml", []byte(src))
			} else {
				cfg, err = LoadBytes("test.yaml", []byte(header+"components:\n  - {name: x, git: x}\n"))
				if err == nil {
					cfg.Components[0].Steps = []Step{{Type: "checkout"}, {Type: "shell", Script: "make", When: tt.when}}
				}
			}
			var m *Matrix
			if err == nil {
				m, err = Expand(cfg)
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.wantErr != "" && err == nil:
				t.Fatalf("accepted, want %q", tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Fatalf("error %q does not contain %q", err, tt.wantErr)
			case err != nil:
				return
			}
			for _, b := range m.Builders {
				for _, s := range b.Steps {
					for _, c := range s.When {
						if err := c.Validate(); err != nil {
							t.Errorf("%s step %s: loaded condition %+v fails protocol validation: %v", b.Name, s.Name, c, err)
						}
					}
				}
			}
		})
	}
}

// TestWhenKnowsEveryTargetField: a target field the worker can test must
// have its values collected here, or every condition on it would be refused
// as matching no target.
func TestWhenKnowsEveryTargetField(t *testing.T) {
	cfg, err := LoadBytes("test.yaml", []byte(header+"components:\n  - {name: x, git: x}\n"))
	if err != nil {
		t.Fatal(err)
	}
	values := newChecker(cfg).fieldValues()
	for _, f := range protocol.ConditionFields {
		if len(values[f]) == 0 {
			t.Errorf("target field %s (protocol.ConditionFields) has no values collected", f)
		}
	}
}

// TestWhenChangeChangesTheBuilder: editing only a condition is a change to
// the builders that run the step, so a reload reports them changed.
func TestWhenChangeChangesTheBuilder(t *testing.T) {
	comp := func(when string) string {
		return "components:\n  - name: x\n    git: x\n    only: [{distro: debian}]\n    steps: [{type: checkout}, {type: shell, script: make, when: " + when + "}]\n"
	}
	old := mustMatrix(t, comp("{arch: [amd64]}"))
	if d := Diff(old, mustMatrix(t, comp("{arch: [amd64]}"))); !d.Empty() {
		t.Errorf("same when: diff %+v", d)
	}
	d := Diff(old, mustMatrix(t, comp("{arch: [arm64]}")))
	if len(d.Changed) != len(old.Builders) || len(d.Added)+len(d.Removed) != 0 {
		t.Errorf("changed when: diff %+v, want all %d builders changed", d, len(old.Builders))
	}
}
