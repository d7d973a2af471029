// Package steps holds the units a build is made of. The worker drives each
// step through the Step interface; a step knows nothing of NATS or the master,
// only its Env: the workspace, the job, a log, the build's properties.
package steps

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/kiln-build/kiln/protocol"
)

// Step is one step type (checkout, shell, ...). Run does the work described
// by spec; a non-nil error fails the step. Run must return promptly once ctx
// is cancelled.
type Step interface {
	Run(ctx context.Context, env *Env, spec protocol.Step) (Outcome, error)
}

// Outcome is what a step leaves behind besides its log and properties.
type Outcome struct {
	// Summary is one line for people, e.g. "checked out 1a2b3c4" or "exit 2".
	Summary string
	// Artifacts are files the worker must store and report with the result.
	Artifacts []File
}

// File is an artifact on disk: Name is its path relative to the workspace
// (what people see), Path where to read it.
type File struct {
	Name string
	Path string
}

// ErrUnknownStep is returned by Lookup for a step type this worker lacks.
var ErrUnknownStep = errors.New("unknown step type")

// registry implements exactly protocol.StepTypes, the list configs are
// checked against; adding a step means adding it there too.
var registry = map[string]Step{
	"checkout": Checkout{},
	"shell":    Shell{},
	"nfpm":     NFPM{},
	"upload":   Upload{},
	"source":   Source{},
	"pbuilder": Pbuilder{},
	"sbuild":   Sbuild{},
	"mock":     Mock{},
	"rpmbuild": RPMBuild{},
	"dpkg":     Dpkg{},
	"lintian":  Lintian{},
	"rpmlint":  RPMLint{},
}

// Run runs spec in env: the step type's implementation, with every
// ${prop.NAME} in the spec's command, script, env, workdir, with and
// artifacts replaced by the build's current properties (so a step sees what
// the steps before it set). set_property regexps are left as written.
// Whatever the step, its summary comes back as one line of at most
// maxSummary characters; the detail is in the log.
func Run(ctx context.Context, env *Env, spec protocol.Step) (Outcome, error) {
	s, err := Lookup(spec.Type)
	if err != nil {
		return Outcome{Summary: summaryLine(err.Error())}, err
	}
	spec, err = expandStep(env.Props, spec)
	if err != nil {
		return Outcome{Summary: summaryLine(err.Error())}, err
	}
	out, err := s.Run(ctx, env, spec)
	out.Summary = summaryLine(out.Summary)
	return out, err
}

func expandStep(p *Properties, spec protocol.Step) (protocol.Step, error) {
	var err error
	if spec.Command, err = p.ExpandAll(spec.Command); err != nil {
		return spec, fmt.Errorf("command: %w", err)
	}
	if spec.Artifacts, err = p.ExpandAll(spec.Artifacts); err != nil {
		return spec, fmt.Errorf("artifacts: %w", err)
	}
	if spec.Script, err = p.Expand(spec.Script); err != nil {
		return spec, fmt.Errorf("script: %w", err)
	}
	if spec.Workdir, err = p.Expand(spec.Workdir); err != nil {
		return spec, fmt.Errorf("workdir: %w", err)
	}
	if spec.Env, err = p.ExpandMap(spec.Env); err != nil {
		return spec, fmt.Errorf("env: %w", err)
	}
	if spec.With, err = p.ExpandMap(spec.With); err != nil {
		return spec, fmt.Errorf("with: %w", err)
	}
	return spec, nil
}

// Lookup returns the step implementing typ.
func Lookup(typ string) (Step, error) {
	s, ok := registry[typ]
	if !ok {
		return nil, fmt.Errorf("%w %q (this worker knows %v)", ErrUnknownStep, typ, Types())
	}
	return s, nil
}

// Types lists the step types this worker can run, sorted.
func Types() []string {
	out := make([]string, 0, len(registry))
	for t := range registry {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}
