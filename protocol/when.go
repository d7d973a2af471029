package protocol

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Condition is one test of a step's `when:`. It lives here, beside Step,
// because both sides need its meaning: builders validates it when the config
// loads, the worker evaluates it just before the step would run, when the
// properties earlier steps set are known. It is plain data and pure code, so
// neither side drags the other's dependencies along.
type Condition struct {
	// Key is a target field (one of ConditionFields) or a property,
	// written PropertyKeyPrefix + NAME.
	Key string `json:"key"`
	// In, when not nil, makes the test "the value is exactly one of these".
	In []string `json:"in,omitempty"`
	// Match is otherwise an RE2 regular expression the value must match
	// somewhere (anchor it with ^ and $ to match the whole value); the empty
	// expression matches any value, so the test is "the value is set".
	Match string `json:"match,omitempty"`
	// Not negates the test. A property that is not set fails every test,
	// so under Not it passes: "not property.x ~ ^yes$" holds when x is unset.
	Not bool `json:"not,omitempty"`
}

// PropertyKeyPrefix starts a Condition.Key that names a property.
const PropertyKeyPrefix = "property."

// ConditionFields are the target fields a condition may test, sorted. They
// come from the job itself (Job.Target and Job.Format), not from properties
// of the same name, which a component's properties could override.
var ConditionFields = []string{"arch", "distro", "format", "version"}

// Facts are what a condition is evaluated against.
type Facts struct {
	Target string // distro/version/arch, as in Job.Target
	Format string // apt or yum
	// Property looks a build property up; nil means none is set.
	Property func(name string) (string, bool)
}

// Validate reports why a condition cannot be evaluated: an unknown key, both
// In and Match given, or a regexp that does not compile. A condition that
// passes never makes Eval fail.
func (c Condition) Validate() error {
	if _, err := c.compile(); err != nil {
		return err
	}
	return nil
}

// compile checks the condition and returns its regexp (nil for In).
func (c Condition) compile() (*regexp.Regexp, error) {
	switch name, isProp := strings.CutPrefix(c.Key, PropertyKeyPrefix); {
	case isProp && name == "":
		return nil, fmt.Errorf("condition key %q names no property", c.Key)
	case !isProp && !slices.Contains(ConditionFields, c.Key):
		return nil, fmt.Errorf("unknown condition key %q", c.Key)
	}
	if c.In != nil {
		if c.Match != "" {
			return nil, fmt.Errorf("condition on %s has both a list and a regular expression", c.Key)
		}
		return nil, nil
	}
	re, err := regexp.Compile(c.Match)
	if err != nil {
		return nil, fmt.Errorf("condition on %s: bad regular expression: %w", c.Key, err)
	}
	return re, nil
}

// String shows the test as the skip summaries do: `distro in [ubuntu]`,
// `property.debian_version ~ ^12\.`, `not arch in [i386]`,
// `property.run_checks is set`.
func (c Condition) String() string {
	var b strings.Builder
	if c.Not {
		b.WriteString("not ")
	}
	b.WriteString(c.Key)
	switch {
	case c.In != nil:
		b.WriteString(" in [")
		b.WriteString(strings.Join(c.In, ", "))
		b.WriteString("]")
	case c.Match == "":
		b.WriteString(" is set")
	default:
		b.WriteString(" ~ ")
		b.WriteString(c.Match)
	}
	return b.String()
}

// Eval evaluates a step's conditions in order. ok is true when every one
// holds (and when there are none). Otherwise why names the first that does
// not, with the value it saw, e.g.
// `property.debian_version ~ ^12\. (was "11.9")` or
// `distro in [ubuntu] (is debian)`. err is set, and ok false, for a
// condition Validate refuses: the caller must not guess whether to run the
// step.
func Eval(when []Condition, f Facts) (ok bool, why string, err error) {
	for _, c := range when {
		re, err := c.compile()
		if err != nil {
			return false, "", err
		}
		value, set, observed := f.lookup(c.Key)
		holds := set && (c.In == nil && re.MatchString(value) || c.In != nil && slices.Contains(c.In, value))
		if holds == c.Not {
			return false, c.String() + " (" + observed + ")", nil
		}
	}
	return true, "", nil
}

// maxShown bounds a property value quoted in a summary: a property may hold a
// whole commit message, a summary is one line of a table.
const maxShown = 60

// lookup returns a key's value, whether it is set, and how a summary shows
// what was seen: target fields "is debian", properties `was "11.9"`.
func (f Facts) lookup(key string) (value string, set bool, observed string) {
	if name, ok := strings.CutPrefix(key, PropertyKeyPrefix); ok {
		if f.Property != nil {
			value, set = f.Property(name)
		}
		if !set {
			return "", false, "not set"
		}
		shown := value
		if len(shown) > maxShown {
			cut := maxShown
			for cut > 0 && !utf8.RuneStart(shown[cut]) {
				cut--
			}
			return value, true, "was " + strconv.Quote(shown[:cut]) + "…"
		}
		return value, true, "was " + strconv.Quote(shown)
	}
	// A malformed target leaves its fields unset rather than failing: the
	// master always sends distro/version/arch.
	parts := strings.Split(f.Target, "/")
	if len(parts) != 3 {
		parts = []string{"", "", ""}
	}
	switch key {
	case "distro":
		value = parts[0]
	case "version":
		value = parts[1]
	case "arch":
		value = parts[2]
	case "format":
		value = f.Format
	}
	if value == "" {
		return "", false, "not set"
	}
	return value, true, "is " + value
}
