package steps

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/internal/kilntest"
)

func TestRPMLint(t *testing.T) {
	kilntest.NeedTool(t, "rpmbuild", "rpmspec", "rpm", "gcc", "rpmlint")
	tests := []struct {
		name string
		with map[string]string
		want error
	}{
		{"default records only", nil, nil},
		{"fail_on error", map[string]string{"fail_on": "error"}, ErrLint},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, log := fixtureEnv(t, "libgreet", "yum", "centos/9/x86_64")
			if o, err := runStep(t, RPMBuild{}, env, nil); err != nil {
				t.Fatalf("rpmbuild: %v (%s)\n%s", err, o.Summary, log)
			}
			o, err := runStep(t, RPMLint{}, env, tt.with)
			if !errors.Is(err, tt.want) || (err == nil) != (tt.want == nil) {
				t.Fatalf("err = %v, want %v\n%s", err, tt.want, log)
			}
			// The test packages are unsigned and carry no Group tag: rpmlint
			// reports these as errors on every version we know.
			n, _ := env.Props.Get("rpmlint_errors")
			if c, _ := strconv.Atoi(n); c == 0 {
				t.Errorf("rpmlint_errors = %q, want some\n%s", n, log)
			}
			if tags, _ := env.Props.Get("rpmlint_error_tags"); !strings.Contains(tags, "libgreet.x86_64: no-group-tag") {
				t.Errorf("rpmlint_error_tags = %q", tags)
			}
			// Tags are named once, with their count (libgreet,
			// libgreet-devel and the source rpm all lack the Group tag).
			if !strings.HasPrefix(o.Summary, "rpmlint: ") || !strings.Contains(o.Summary, "(no-group-tag ×3,") {
				t.Errorf("summary %q", o.Summary)
			}
		})
	}
}
