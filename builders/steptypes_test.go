package builders

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/protocol"
)

// TestStepTypesAccepted checks that validation follows protocol.StepTypes
// both ways: every type a worker implements is accepted, anything else is
// refused with the list to choose from.
func TestStepTypesAccepted(t *testing.T) {
	type tc struct {
		typ     string
		wantErr string // "" when the config must load
	}
	var tests []tc
	for _, typ := range protocol.StepTypes {
		tests = append(tests, tc{typ, ""})
	}
	tests = append(tests,
		// sign was documented once but never implemented: signing happens
		// on the master at publish.
		tc{"sign", `unknown step type "sign" (hint: one of ` + strings.Join(protocol.StepTypes, ", ") + ")"},
		tc{"Shell", `unknown step type "Shell" (hint: did you mean ` + "`shell`" + "?)"},
		tc{"make", `unknown step type "make"`},
	)
	for _, tt := range tests {
		t.Run(tt.typ, func(t *testing.T) {
			yaml := header + "components:\n  - name: x\n    git: x\n    steps: [{type: " + tt.typ + ", command: [make]}]\n"
			cfg, err := LoadBytes("test.yaml", []byte(yaml))
			if err == nil {
				_, err = Expand(cfg)
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("step type %s refused: %v", tt.typ, err)
			case tt.wantErr != "" && err == nil:
				t.Fatalf("step type %s accepted", tt.typ)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Fatalf("error %q does not contain %q", err, tt.wantErr)
			}
		})
	}
}

// TestKindStepsAreStepTypes keeps a kind's default steps runnable: a builder
// that names no steps must not be given one the workers lack.
func TestKindStepsAreStepTypes(t *testing.T) {
	for _, name := range kindNames {
		for _, s := range kinds[name].steps {
			if !slices.Contains(protocol.StepTypes, s) {
				t.Errorf("kind %s runs step %q, not in protocol.StepTypes %v", name, s, protocol.StepTypes)
			}
		}
	}
}

// TestConfigDocListsStepTypes ties docs/config.md's step table to
// protocol.StepTypes, so the manual cannot promise a step no worker has.
func TestConfigDocListsStepTypes(t *testing.T) {
	data, err := os.ReadFile("../docs/config.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `type` \\| step type \\|.*$").Find(data)
	if row == nil {
		t.Fatal("docs/config.md has no `type` row in its step table")
	}
	cells := strings.Split(strings.Trim(string(row), "|"), "|")
	var documented []string
	for _, m := range regexp.MustCompile("`([^`]+)`").FindAllStringSubmatch(cells[len(cells)-1], -1) {
		documented = append(documented, m[1])
	}
	slices.Sort(documented)
	if !slices.Equal(documented, protocol.StepTypes) {
		t.Errorf("docs/config.md lists step types %v, protocol.StepTypes is %v", documented, protocol.StepTypes)
	}
}
