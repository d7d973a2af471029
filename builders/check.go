package builders

import (
	"fmt"
	"maps"
	"path"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/kiln-build/kiln/protocol"
)

// checker validates a config and collects every problem with its position.
type checker struct {
	cfg       *Config
	errs      Errors
	templates map[string][]Step // resolved, by name
	lists     map[string][]Step // resolved step lists, by key path
	reported  map[string]bool
	fields    map[string][]string // target field → the farm's values, for when: (fieldValues)
}

func newChecker(cfg *Config) *checker {
	return &checker{cfg: cfg, templates: map[string][]Step{}, lists: map[string][]Step{}, reported: map[string]bool{}}
}

// once reports whether a problem of this kind about this subject is new, for
// checks that meet the same problem more than once (per distro, per loop
// member) but should speak once.
func (c *checker) once(kind, subject string) bool {
	key := kind + " " + subject
	if c.reported[key] {
		return false
	}
	c.reported[key] = true
	return true
}

func (c *checker) errorf(path, hint, format string, args ...any) {
	p, _ := c.cfg.Position(path)
	c.errs = append(c.errs, &Error{File: p.File, Line: p.Line, Column: p.Column,
		Path: path, Msg: fmt.Sprintf(format, args...), Hint: hint})
}

func idx(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

// name checks a name against a pattern; what says what it names.
func (c *checker) name(path, what, s string, re *regexp.Regexp, rule string) bool {
	switch {
	case s == "":
		c.errorf(path, "", "%s is missing", what)
	case !validName(re, s):
		hint := rule
		if len(s) > maxNameLen {
			hint = fmt.Sprintf("at most %d characters", maxNameLen)
		} else if low := strings.ToLower(s); low != s && validName(re, low) {
			hint = "write " + strconv.Quote(low)
		}
		c.errorf(path, hint, "%s %q is not a valid name", what, s)
	default:
		return true
	}
	return false
}

// unique reports the second and later uses of a name.
type unique map[string]string // name → path of first use

func (c *checker) unique(u unique, path, what, name string) {
	if first, ok := u[name]; ok {
		p, _ := c.cfg.Position(first)
		c.errorf(path, "rename or delete one of them", "duplicate %s %q (first at %s)", what, name, where(p, first))
		return
	}
	u[name] = path
}

func where(p Pos, path string) string {
	if p.Line == 0 {
		return path
	}
	return fmt.Sprintf("%s:%d", p.File, p.Line)
}

func (c *checker) tags(path string, tags []string) {
	for i, t := range tags {
		c.name(idx(path, i), "tag", t, namePattern, nameRule)
	}
}

func (c *checker) master() {
	m := c.cfg.Master
	if m.MaxAttempts < 0 {
		c.errorf("master.max_attempts", "use 1 or more", "max_attempts must not be negative, got %d", m.MaxAttempts)
	}
	if m.NATS != "" && m.NATSURL != "" {
		c.errorf("master.nats_url", "drop master.nats to use an external NATS cluster", "nats and nats_url are mutually exclusive")
	}
	c.intake()
}

func (c *checker) workers() {
	seen := unique{}
	for i, w := range c.cfg.Workers {
		p := idx("workers", i)
		if c.name(p+".name", "worker name", w.Name, tokenPattern, tokenRule) {
			c.unique(seen, p+".name", "worker", w.Name)
		}
		if w.Slots < 1 || w.Slots > 1024 {
			c.errorf(p+".slots", "a worker runs 1 to 1024 builds at once", "invalid slots %d", w.Slots)
		}
		c.tags(p+".tags", w.Tags)
	}
}

func (c *checker) users() {
	seen := unique{}
	for i, u := range c.cfg.Users {
		p := idx("users", i)
		if c.name(p+".name", "user name", u.Name, labelPattern, labelRule) {
			c.unique(seen, p+".name", "user", u.Name)
		}
		if u.PasswordHash == "" && u.Token == "" {
			c.errorf(p, "set password_hash (bcrypt) or token", "user %q cannot log in", u.Name)
		}
	}
}

func (c *checker) notify() {
	for i, n := range c.cfg.Notify {
		if n.Type == "" {
			c.errorf(idx("notify", i), "", "notify entry has no type")
		}
	}
}

func (c *checker) repos() {
	r := c.cfg.Repos
	if r.Retain < 0 {
		c.errorf("repos.retain", "0 keeps every version", "retain must not be negative, got %d", r.Retain)
	}
	byName := map[string]int{}
	seen := unique{}
	for i, ch := range r.Channels {
		p := idx("repos.channels", i)
		if c.name(p+".name", "channel name", ch.Name, tokenPattern, tokenRule) {
			c.unique(seen, p+".name", "channel", ch.Name)
			if _, dup := byName[ch.Name]; !dup {
				byName[ch.Name] = i
			}
		}
		switch {
		case ch.Key == "":
			c.errorf(p+".name", "name the signing key (key: NAME or fingerprint)", "channel %q has no signing key", ch.Name)
		case !validName(labelPattern, strings.ReplaceAll(ch.Key, " ", "")):
			c.errorf(p+".key", "a key name or an OpenPGP fingerprint", "signing key %q is not a valid name", ch.Key)
		}
	}
	names := slices.Sorted(maps.Keys(byName))
	if len(r.Channels) > 0 {
		if _, ok := byName["dev"]; !ok {
			c.errorf("repos.channels", "every good build is published to dev, and dependents build against it", "no channel named \"dev\"")
		}
	} else {
		c.errorf("repos", "add repos.channels with at least a dev channel", "no channels: builds would have nowhere to publish")
	}
	for i, ch := range r.Channels {
		if ch.PromoteFrom == "" {
			continue
		}
		p := idx("repos.channels", i) + ".promote_from"
		if ch.PromoteFrom == ch.Name {
			c.errorf(p, "", "channel %q promotes from itself", ch.Name)
			continue
		}
		if _, ok := byName[ch.PromoteFrom]; !ok {
			c.errorf(p, suggest(ch.PromoteFrom, names), "unknown channel %q", ch.PromoteFrom)
			continue
		}
		// Follow the promotion chain; a loop means no channel is ever fed.
		chain := []string{ch.Name}
		for cur := ch.PromoteFrom; cur != ""; cur = r.Channels[byName[cur]].PromoteFrom {
			chain = append(chain, cur)
			if cur == ch.Name {
				if ch.Name == slices.Min(chain) {
					c.errorf(p, "", "promotion loop: %s", strings.Join(chain, " ← "))
				}
				break
			}
			if _, ok := byName[cur]; !ok || len(chain) > len(byName)+1 {
				break
			}
		}
	}
}

// steps checks a step list as written; resolution (use:) happens separately.
func (c *checker) steps(base string, steps []Step) {
	for i, s := range steps {
		p := idx(base, i)
		c.when(p+".when", s.When)
		if s.Use != "" {
			rest := s
			rest.Use, rest.When = "", nil
			if !reflect.ValueOf(rest).IsZero() {
				c.errorf(p+".use", "put the other keys in the template, or in a step of their own", "a `use:` step takes no other keys except `when:`")
			}
			continue
		}
		switch {
		case s.Type == "":
			c.errorf(p, "e.g. type: shell", "step has no type (and no use:)")
		case !slices.Contains(protocol.StepTypes, s.Type):
			// Workers implement exactly protocol.StepTypes: anything else
			// would pass here only to fail on the worker.
			hint := suggest(s.Type, protocol.StepTypes)
			if hint == "" {
				hint = "one of " + strings.Join(protocol.StepTypes, ", ")
			}
			c.errorf(p+".type", hint, "unknown step type %q", s.Type)
		}
		if s.Name != "" {
			c.name(p+".name", "step name", s.Name, labelPattern, labelRule)
		}
		if s.Type == "shell" && len(s.Command) == 0 && s.Script == "" {
			c.errorf(p, "give command: [argv...] or script: |", "shell step has nothing to run")
		}
		if len(s.Command) > 0 && s.Script != "" {
			c.errorf(p+".script", "use one of them", "command and script are mutually exclusive")
		}
		for _, prop := range slices.Sorted(maps.Keys(s.SetProperty)) {
			pp := p + ".set_property." + prop
			c.name(pp, "property name", prop, propPattern, propRule)
			re, err := regexp.Compile(s.SetProperty[prop])
			if err != nil {
				c.errorf(pp, "", "bad regular expression: %v", err)
			} else if re.NumSubexp() == 0 {
				c.errorf(pp, "wrap the value in ( ), e.g. `Version: (\\S+)`", "regular expression has no group to capture the value")
			}
		}
		for j, a := range s.Artifacts {
			if _, err := path.Match(a, ""); err != nil {
				c.errorf(idx(p+".artifacts", j), "", "bad glob %q: %v", a, err)
			}
		}
	}
}

// resolve splices templates into a step list. stack holds the templates being
// resolved, to report recursion.
func (c *checker) resolve(path string, steps []Step, stack []string) []Step {
	out := make([]Step, 0, len(steps))
	for i, s := range steps {
		if len(out) > maxSteps {
			c.errorf(path, "split the work into fewer, larger steps", "more than %d steps once templates are spliced in", maxSteps)
			return out[:maxSteps]
		}
		if s.Use == "" {
			out = append(out, s)
			continue
		}
		p := idx(path, i) + ".use"
		if done, ok := c.templates[s.Use]; ok {
			out = append(out, withWhen(done, s.When)...)
			continue
		}
		body, ok := c.cfg.Templates[s.Use]
		if !ok {
			c.errorf(p, suggest(s.Use, slices.Sorted(maps.Keys(c.cfg.Templates))), "unknown template %q", s.Use)
			continue
		}
		if at := slices.Index(stack, s.Use); at >= 0 {
			loop := append(slices.Clone(stack[at:]), s.Use)
			if c.once("template-loop", strings.Join(slices.Sorted(slices.Values(stack[at:])), " ")) {
				c.errorf(p, "a template cannot use itself, directly or through others", "template recursion: %s", strings.Join(loop, " → "))
			}
			continue
		}
		done := c.resolve("templates."+s.Use, body, append(stack, s.Use))
		c.templates[s.Use] = done
		out = append(out, withWhen(done, s.When)...)
	}
	return out
}

func (c *checker) checkTemplates() {
	for _, name := range slices.Sorted(maps.Keys(c.cfg.Templates)) {
		p := "templates." + name
		c.name(p, "template name", name, labelPattern, labelRule)
		c.steps(p, c.cfg.Templates[name])
		if len(c.cfg.Templates[name]) == 0 {
			c.errorf(p, "delete it or give it steps", "template %q has no steps", name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(c.cfg.Templates)) {
		if _, ok := c.templates[name]; !ok {
			c.templates[name] = c.resolve("templates."+name, c.cfg.Templates[name], []string{name})
		}
	}
}
