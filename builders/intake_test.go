package builders

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestIntakeSettings(t *testing.T) {
	const comp = "components:\n  - {name: app, git: git@example.com:farm/app.git%s}\n"
	tests := []struct {
		name, master, compExtra string
		want                    string // "" when valid, else "line:col: path: message" fragment
	}{
		{"all set", `
  hooks:
    github: {secret: env:KILN_HOOK_GITHUB}
    gitlab: {secret: /etc/kiln/gitlab.token, allow_unsigned: false}
    generic: {allow_unsigned: true}
    max_body: 2097152
  poll: {interval: 5m, jitter_percent: 20, max_backoff: 1h, emit_on_first_sight: true}
  config: {git: https://git.example.com/farm/config.git, branch: prod, path: kiln/, poll: 30s}`, ", poll: 10m", ""},
		{"poll off for one component", "", ", poll: off", ""},
		{"local config path", "\n  config: {path: farm.d}", "", ""},
		{"bad env name", "\n  hooks:\n    gitea: {secret: env:9LIVES}", "", `3:13: master.hooks.gitea.secret: invalid environment variable name "9LIVES"`},
		{"negative body limit", "\n  hooks: {max_body: -1}", "", "2:11: master.hooks.max_body: max_body must be between"},
		{"poll too eager", "\n  poll: {interval: 10ms}", "", "2:10: master.poll.interval: poll interval 10ms is shorter than 1s"},
		{"jitter over half", "\n  poll: {jitter_percent: 80}", "", "master.poll.jitter_percent: jitter_percent must be between 0 and 50, got 80"},
		{"backoff below interval", "\n  poll: {interval: 10m, max_backoff: 1m}", "", "master.poll.max_backoff: max_backoff 1m0s is shorter than the interval 10m0s"},
		{"component poll not a duration", "", ", poll: sometimes", `components[0].poll: invalid duration "sometimes"`},
		{"config branch without git", "\n  config: {branch: main}", "", "master.config.branch: master.config.branch needs master.config.git"},
		{"config path leaves the repository", "\n  config: {git: https://x.example/c.git, path: ../etc}", "", `master.config.path: master.config.path "../etc" leaves the repository`},
		{"bad config branch", "\n  config: {git: https://x.example/c.git, branch: \"a b\"}", "", `master.config.branch: invalid branch name "a b"`},
		{"unknown hook provider", "\n  hooks:\n    gogs: {secret: x}", "", `master.hooks.gogs: unknown key "gogs"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "master:" + tt.master + "\n" + header + strings.ReplaceAll(comp, "%s", tt.compExtra)
			if tt.master == "" {
				src = header + strings.ReplaceAll(comp, "%s", tt.compExtra)
			}
			cfg, err := LoadBytes("test.yaml", []byte(src))
			if err == nil {
				_, err = Expand(cfg)
			}
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.want != "" && (err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("error %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestIntakeSettingsValues(t *testing.T) {
	cfg, err := LoadBytes("test.yaml", []byte("master:\n  poll: {enabled: false}\n"+header+
		"components:\n  - {name: a, git: /srv/a, poll: 5m}\n  - {name: b, git: /srv/b, poll: off}\n  - {name: c, git: /srv/c}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Expand(cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Master.Poll.On() || cfg.Master.Poll.Jitter() != 0.1 {
		t.Errorf("poll = %+v on=%v jitter=%v", cfg.Master.Poll, cfg.Master.Poll.On(), cfg.Master.Poll.Jitter())
	}
	want := []*PollSetting{{Interval: 5 * time.Minute}, {Off: true}, nil}
	for i, c := range cfg.Components {
		if (c.Poll == nil) != (want[i] == nil) || (c.Poll != nil && *c.Poll != *want[i]) {
			t.Errorf("component %s poll = %+v, want %+v", c.Name, c.Poll, want[i])
		}
	}
}
