#!/usr/bin/env bash
# Runs the control plane's benchmarks on two commits, alternately, so both
# see the same machine in the same minutes (docs/benchmarks.md, "Before and
# after"). Usage: bench/before-after.sh OLD_REV [ROUNDS]
#
# OLD_REV is checked out into a temporary git worktree; the work tree as it
# is now is the "new" side. Each round runs, on each side: the 1,000-build
# pipeline (1 and 8 slots per worker), the grid and API from a real master,
# the config reload, the grid page from the in-memory source, and one raft
# commit. Repository and signing benchmarks have their own scripts
# (bench/repo.sh, bench/signing.sh). Run it on a quiet machine: the figures
# are only as steady as the load printed with them.
set -euo pipefail
cd "$(dirname "$0")/.."
old=${1:?usage: bench/before-after.sh OLD_REV [ROUNDS]}
rounds=${2:-2}
tree=$(mktemp -d)
trap 'git worktree remove --force "$tree/old" >/dev/null 2>&1 || true; rm -rf "$tree"' EXIT
git worktree add --detach "$tree/old" "$old" >/dev/null

run() { # side dir
	local side=$1 dir=$2
	(
		cd "$dir"
		echo "## $side ($(git -C "$dir" rev-parse --short HEAD)), load $(cut -d' ' -f1-3 /proc/loadavg)"
		go test -run '^$' -bench 'Pipeline1000' -benchtime 1x -timeout 20m ./master/ 2>&1 | grep -E '^Benchmark|^(pipeline|grid page|GET )'
		go test -run '^$' -bench 'WebRealMaster' -benchtime 1x -timeout 20m ./master/ 2>&1 | grep -E '^Benchmark|^(pipeline|grid page|GET )'
		go test -run '^$' -bench 'ConfigReload' -benchtime 20x -timeout 20m ./master/ 2>&1 | grep -E '^Benchmark|^(pipeline|grid page|GET )'
		go test -run '^$' -bench 'GridPage$' -benchtime 300x -benchmem ./master/web/ 2>&1 | grep -E '^Benchmark'
		go test -run '^$' -bench 'Apply' -benchtime 2000x ./master/state/ 2>&1 | grep -E '^Benchmark'
	)
}

for r in $(seq "$rounds"); do
	echo "# round $r"
	run old "$tree/old"
	run new "$PWD"
done
