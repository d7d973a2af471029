package builders

import (
	"path/filepath"
	"strings"
	"time"
)

// Hooks configures the webhook endpoints under /hooks/.
type Hooks struct {
	GitHub    HookProvider `yaml:"github"`
	GitLab    HookProvider `yaml:"gitlab"`
	Gitea     HookProvider `yaml:"gitea"` // also Forgejo
	Bitbucket HookProvider `yaml:"bitbucket"`
	Generic   HookProvider `yaml:"generic"`
	// MaxBody bounds a request body in bytes; 0 means 1 MiB.
	MaxBody int `yaml:"max_body"`
}

// HookProvider is one webhook sender's proof of origin.
type HookProvider struct {
	// Secret is a reference to the HMAC key or token: a file path (relative
	// to the config file) or env:VAR, like workers' credentials.
	Secret string `yaml:"secret"`
	// AllowUnsigned accepts requests that carry no signature at all.
	AllowUnsigned bool `yaml:"allow_unsigned"`
}

// Providers lists the providers by endpoint name, in a fixed order.
func (h Hooks) Providers() []NamedHookProvider {
	return []NamedHookProvider{
		{"github", h.GitHub}, {"gitlab", h.GitLab}, {"gitea", h.Gitea},
		{"bitbucket", h.Bitbucket}, {"generic", h.Generic},
	}
}

// NamedHookProvider is a HookProvider with its endpoint name.
type NamedHookProvider struct {
	Name string
	HookProvider
}

// Poll configures the pollers of the components' repositories.
type Poll struct {
	// Enabled false turns every poller off (webhooks only). Default on.
	Enabled *bool `yaml:"enabled"`
	// Interval between two polls of one repository; default 1m.
	Interval Duration `yaml:"interval"`
	// JitterPercent spreads polls by ± this share of the delay; default 10.
	JitterPercent int `yaml:"jitter_percent"`
	// MaxBackoff caps the delay after consecutive failures; default 30m.
	MaxBackoff Duration `yaml:"max_backoff"`
	// EmitOnFirstSight makes a repository's first poll report every ref as
	// a change instead of only recording it.
	EmitOnFirstSight bool `yaml:"emit_on_first_sight"`
}

// On reports whether pollers run.
func (p Poll) On() bool { return p.Enabled == nil || *p.Enabled }

// PollSetting is a component's own poll setting: "off", or an interval
// that overrides master.poll.interval for its repository.
type PollSetting struct {
	Off      bool
	Interval time.Duration
}

// UnmarshalText reads "off", "false" or a duration.
func (p *PollSetting) UnmarshalText(b []byte) error {
	switch s := string(b); s {
	case "off", "false":
		*p = PollSetting{Off: true}
		return nil
	case "on", "true":
		*p = PollSetting{}
		return nil
	}
	var d Duration
	if err := d.UnmarshalText(b); err != nil {
		return err
	}
	*p = PollSetting{Interval: d.D()}
	return nil
}

// MarshalText writes what UnmarshalText reads.
func (p PollSetting) MarshalText() ([]byte, error) {
	switch {
	case p.Off:
		return []byte("off"), nil
	case p.Interval == 0:
		return []byte("on"), nil
	}
	return []byte(p.Interval.String()), nil
}

// ConfigSource says where the farm's configuration lives. Without Git, Path
// is a local file or directory (relative to the file that names it); with
// Git, the master clones the repository and reads Path inside it.
type ConfigSource struct {
	Git    string   `yaml:"git"`
	Branch string   `yaml:"branch"` // default main
	Path   string   `yaml:"path"`   // inside the repository; default its root
	Poll   Duration `yaml:"poll"`   // default 1m
}

// Intake defaults and the bounds validation holds settings to.
const (
	DefaultConfigPoll    = time.Minute
	minPollInterval      = time.Second
	maxHookBody          = 64 << 20
	maxJitterPercent     = 50
	defaultJitterPercent = 10
)

// Jitter returns the configured jitter as a fraction.
func (p Poll) Jitter() float64 {
	if p.JitterPercent == 0 {
		return defaultJitterPercent / 100.0
	}
	return float64(p.JitterPercent) / 100
}

func (c *checker) intake() {
	m := c.cfg.Master
	for _, p := range m.Hooks.Providers() {
		c.secretRef("master.hooks."+p.Name+".secret", p.Secret)
	}
	if m.Hooks.MaxBody < 0 || m.Hooks.MaxBody > maxHookBody {
		c.errorf("master.hooks.max_body", "", "max_body must be between 0 (the default, 1 MiB) and %d bytes, got %d", maxHookBody, m.Hooks.MaxBody)
	}
	c.interval("master.poll.interval", m.Poll.Interval.D())
	if j := m.Poll.JitterPercent; j < 0 || j > maxJitterPercent {
		c.errorf("master.poll.jitter_percent", "", "jitter_percent must be between 0 and %d, got %d", maxJitterPercent, j)
	}
	if b := m.Poll.MaxBackoff.D(); b != 0 && b < m.Poll.Interval.D() {
		c.errorf("master.poll.max_backoff", "make it at least the interval", "max_backoff %s is shorter than the interval %s", b, m.Poll.Interval.D())
	}
	for i, comp := range c.cfg.Components {
		if comp.Poll != nil {
			c.interval(idx("components", i)+".poll", comp.Poll.Interval)
		}
	}
	src := m.Config
	c.interval("master.config.poll", src.Poll.D())
	if src.Git == "" {
		for _, k := range []string{"branch", "poll"} {
			if _, ok := c.cfg.pos["master.config."+k]; ok {
				c.errorf("master.config."+k, "add git: URL, or drop it", "master.config.%s needs master.config.git", k)
			}
		}
		return
	}
	if strings.ContainsAny(src.Branch, " \t\n~^:?*[\\") || strings.HasPrefix(src.Branch, "-") {
		c.errorf("master.config.branch", "", "invalid branch name %q", src.Branch)
	}
	if p := filepath.ToSlash(filepath.Clean(src.Path)); filepath.IsAbs(src.Path) || p == ".." || strings.HasPrefix(p, "../") {
		c.errorf("master.config.path", "a path inside the repository, e.g. kiln/", "master.config.path %q leaves the repository", src.Path)
	}
}

// interval refuses poll intervals so short they would hammer a forge.
func (c *checker) interval(path string, d time.Duration) {
	if d != 0 && d < minPollInterval {
		c.errorf(path, "", "poll interval %s is shorter than %s", d, minPollInterval)
	}
}

// secretRef checks the form of a secret reference; reading it is the
// master's business (this package does no I/O but reading the config).
func (c *checker) secretRef(path, ref string) {
	if ref == "" {
		return
	}
	if name, ok := strings.CutPrefix(ref, "env:"); ok && !validEnvName(name) {
		c.errorf(path, "write env:NAME with letters, digits and _", "invalid environment variable name %q", name)
	}
}

func validEnvName(s string) bool {
	if s == "" || (s[0] >= '0' && s[0] <= '9') {
		return false
	}
	for _, r := range s {
		if !(r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}
