package steps

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"slices"

	"github.com/kiln-build/kiln/protocol"
)

// RPMLint checks the built rpms; findings are recorded and fail the build
// only where with: fail_on says so, as for lintian.
//
// with: files (glob, default dist/*.rpm), fail_on.
type RPMLint struct{}

// reRPMLint matches rpmlint's "libgreet.x86_64: E: tag extra" lines.
var reRPMLint = regexp.MustCompile(`^(?:\S+/)?(?P<pkg>\S+?)(?:\.rpm)?: (?P<sev>[EW]): (?P<tag>\S+)`)

// rpmlint exits 64 when it found errors and 66 when the score passed its
// threshold; both mean "ran and found something", which fail_on judges.
var rpmlintFindingExits = []int{64, 66}

func (RPMLint) Run(ctx context.Context, env *Env, spec protocol.Step) (Outcome, error) {
	files, err := lintTargets(env, spec.With["files"], "dist/*.rpm")
	if err != nil {
		return fail(fmt.Errorf("rpmlint: %w", err))
	}
	out, err := runTool(ctx, env, ".", spec.Timeout, nil, append([]string{"rpmlint"}, files...)...)
	var exit *exec.ExitError
	if err != nil && !(errors.As(err, &exit) && slices.Contains(rpmlintFindingExits, exit.ExitCode())) {
		return fail(out.failure("rpmlint", err, ErrToolFailed))
	}
	return lintOutcome(env, "rpmlint", spec.With, scanLint(out, reRPMLint))
}
