package protocol

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// TestEval is the meaning of `when:` in one table: target fields and
// properties, lists and regexps, negation, properties never set, and the
// summary naming the first condition that does not hold.
func TestEval(t *testing.T) {
	props := map[string]string{"debian_version": "11.9", "empty": "", "long": strings.Repeat("é", 40)}
	facts := Facts{Target: "debian/bookworm/amd64", Format: "apt", Property: func(n string) (string, bool) {
		v, ok := props[n]
		return v, ok
	}}
	in := func(key string, vals ...string) Condition { return Condition{Key: key, In: vals} }
	match := func(key, re string) Condition { return Condition{Key: key, Match: re} }
	not := func(c Condition) Condition { c.Not = true; return c }

	tests := []struct {
		name  string
		when  []Condition
		facts Facts
		ok    bool
		why   string
	}{
		{name: "no conditions", ok: true},
		{name: "distro in list", when: []Condition{in("distro", "ubuntu", "debian")}, ok: true},
		{name: "distro not in list", when: []Condition{in("distro", "ubuntu")}, why: "distro in [ubuntu] (is debian)"},
		{name: "version and arch", when: []Condition{in("version", "bookworm"), in("arch", "amd64")}, ok: true},
		{name: "format", when: []Condition{in("format", "yum")}, why: "format in [yum] (is apt)"},
		{name: "list is exact, not a prefix", when: []Condition{in("distro", "deb")}, why: "distro in [deb] (is debian)"},
		{name: "regexp on a target field", when: []Condition{match("version", "^book")}, ok: true},
		{name: "property regexp holds", when: []Condition{match("property.debian_version", `^11\.`)}, ok: true},
		{name: "property regexp fails", when: []Condition{match("property.debian_version", `^12\.`)}, why: `property.debian_version ~ ^12\. (was "11.9")`},
		{name: "regexp is unanchored", when: []Condition{match("property.debian_version", `\.9`)}, ok: true},
		{name: "property in list", when: []Condition{in("property.debian_version", "11.9", "12.0")}, ok: true},
		{name: "unset property fails a regexp", when: []Condition{match("property.nope", "x")}, why: "property.nope ~ x (not set)"},
		{name: "unset property fails an empty regexp", when: []Condition{match("property.nope", "")}, why: "property.nope is set (not set)"},
		{name: "empty regexp: the property is set", when: []Condition{match("property.empty", "")}, ok: true},
		{name: "unset property fails a list", when: []Condition{in("property.nope", "")}, why: "property.nope in [] (not set)"},
		{name: "no property lookup at all", when: []Condition{match("property.debian_version", "")}, facts: Facts{Target: "debian/bookworm/amd64"}, why: "property.debian_version is set (not set)"},
		{name: "not: negated list holds", when: []Condition{not(in("distro", "ubuntu"))}, ok: true},
		{name: "not: negated list fails", when: []Condition{not(in("distro", "debian"))}, why: "not distro in [debian] (is debian)"},
		{name: "not: unset property holds", when: []Condition{not(match("property.nope", "^yes$"))}, ok: true},
		{name: "not: set property fails", when: []Condition{not(match("property.debian_version", "11"))}, why: `not property.debian_version ~ 11 (was "11.9")`},
		{name: "first failing condition is named", when: []Condition{in("distro", "debian"), in("arch", "arm64"), in("format", "yum")}, why: "arch in [arm64] (is amd64)"},
		{name: "long value is cut at a rune", when: []Condition{in("property.long", "x")}, why: `property.long in [x] (was "` + strings.Repeat("é", 30) + `"…)`},
		{name: "malformed target leaves fields unset", when: []Condition{in("distro", "debian")}, facts: Facts{Target: "debian"}, why: "distro in [debian] (not set)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := facts
			if tt.facts.Target != "" {
				f = tt.facts
			}
			ok, why, err := Eval(tt.when, f)
			if err != nil || ok != tt.ok || why != tt.why {
				t.Errorf("Eval = %v, %q, %v; want %v, %q", ok, why, err, tt.ok, tt.why)
			}
		})
	}
}

// TestEvalRefusesWhatItCannotJudge: a condition the master should never
// send is an error, not a guess at running or skipping the step.
func TestEvalRefusesWhatItCannotJudge(t *testing.T) {
	for _, tt := range []struct {
		c    Condition
		want string
	}{
		{Condition{Key: "kind", In: []string{"shell"}}, `unknown condition key "kind"`},
		{Condition{Key: "debian_version", Match: "x"}, `unknown condition key "debian_version"`},
		{Condition{Key: "property.", Match: "x"}, "names no property"},
		{Condition{Key: "distro", In: []string{"debian"}, Match: "d"}, "both a list and a regular expression"},
		{Condition{Key: "property.v", Match: "(["}, "bad regular expression"},
	} {
		if err := tt.c.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Validate(%+v) = %v, want %q", tt.c, err, tt.want)
		}
		ok, _, err := Eval([]Condition{{Key: "distro", In: []string{"debian"}}, tt.c}, Facts{Target: "debian/bookworm/amd64"})
		if ok || err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Eval(%+v) = %v, %v; want an error %q", tt.c, ok, err, tt.want)
		}
	}
}

// TestStepWhenOnTheWire: conditions survive the JSON a job travels as, and
// a step without them encodes as before (no "when" key), so steps that do
// not use the feature look the same to anything reading the JSON.
func TestStepWhenOnTheWire(t *testing.T) {
	s := Step{Name: "deb12", Type: "shell", Script: "true", When: []Condition{
		{Key: "distro", In: []string{"debian"}},
		{Key: "property.debian_version", Match: `^12\.`, Not: true},
		{Key: "property.set", Match: ""},
	}}
	var back Step
	if err := Decode(Encode(s), &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, s) {
		t.Errorf("round trip: %+v, want %+v", back, s)
	}
	var raw map[string]any
	if err := json.Unmarshal(Encode(Step{Name: "plain", Type: "shell"}), &raw); err != nil {
		t.Fatal(err)
	}
	if _, ok := raw["when"]; ok {
		t.Errorf("a step without conditions encodes a when key: %v", raw)
	}
}
