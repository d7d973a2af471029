package steps

import (
	"errors"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/internal/kilntest"
)

func TestLintian(t *testing.T) {
	kilntest.NeedTool(t, "dpkg-buildpackage", "dh", "gcc", "lintian")
	tests := []struct {
		name       string
		copyright  bool // without debian/copyright lintian reports E: no-copyright-file
		with       map[string]string
		want       error
		errors     string
		errorTags  string
		summaryHas string
	}{
		{"clean, default records", true, nil, nil, "0", "", "0 error(s), 2 warning(s)"},
		{"error, default records only", false, nil, nil, "2", "libgreet-dev: no-copyright-file libgreet1: no-copyright-file", "libgreet1: no-copyright-file"},
		{"error, fail_on error", false, map[string]string{"fail_on": "error"}, ErrLint, "2", "libgreet-dev: no-copyright-file libgreet1: no-copyright-file", "no-copyright-file"},
		{"warnings, fail_on warning", true, map[string]string{"fail_on": "warning"}, ErrLint, "0", "", "2 warning(s)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, log := fixtureEnv(t, "libgreet", "apt", "debian/bookworm/amd64")
			if !tt.copyright {
				rmAll(t, env.Workspace, "debian/copyright")
			}
			if o, err := runStep(t, Dpkg{}, env, nil); err != nil {
				t.Fatalf("dpkg: %v (%s)\n%s", err, o.Summary, log)
			}
			o, err := runStep(t, Lintian{}, env, tt.with)
			if !errors.Is(err, tt.want) || (err == nil) != (tt.want == nil) {
				t.Fatalf("err = %v, want %v\n%s", err, tt.want, log)
			}
			if got, _ := env.Props.Get("lintian_errors"); got != tt.errors {
				t.Errorf("lintian_errors = %q, want %q", got, tt.errors)
			}
			if got, _ := env.Props.Get("lintian_error_tags"); got != tt.errorTags {
				t.Errorf("lintian_error_tags = %q, want %q", got, tt.errorTags)
			}
			if !strings.Contains(o.Summary, tt.summaryHas) {
				t.Errorf("summary %q lacks %q", o.Summary, tt.summaryHas)
			}
		})
	}
}

func TestLintBadFailOn(t *testing.T) {
	env, _ := newTestEnv(t, jobFor("debian/bookworm/amd64", "apt"))
	if _, err := lintOutcome(env, "lintian", map[string]string{"fail_on": "sometimes"}, lintFindings{}); err == nil || !strings.Contains(err.Error(), "want none, error or warning") {
		t.Fatalf("err = %v", err)
	}
}
