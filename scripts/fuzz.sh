#!/usr/bin/env bash
# Fuzzes each PKG:TARGET given for FUZZTIME (default 10s).
# Usage: scripts/fuzz.sh PKG:TARGET...
#
# Go 1.26's fuzz coordinator can end a duration-bounded run with a bare
# "context deadline exceeded" although nothing was found: its deadline races
# a busy worker's last input (go.dev/issue/75804, fixed in Go 1.27). Such a
# run wrote no failing input, so it is run once more; anything else that
# fails — a failing input written, a panic, a second deadline — fails.
set -uo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-10s}
go=${GO:-go}

fuzz() { # pkg target
	"$go" test -run '^$' -fuzz "^$2\$" -fuzztime "$fuzztime" "./$1" 2>&1
}

for t in "$@"; do
	pkg=${t%%:*} fn=${t##*:}
	echo "fuzz $pkg $fn"
	out=$(fuzz "$pkg" "$fn")
	rc=$?
	echo "$out"
	if [ $rc -ne 0 ] && grep -q 'context deadline exceeded' <<<"$out" && ! grep -q 'Failing input written' <<<"$out"; then
		echo "fuzz $pkg $fn: the -fuzztime deadline race, no failing input (go.dev/issue/75804); once more"
		fuzz "$pkg" "$fn"
		rc=$?
	fi
	[ $rc -eq 0 ] || exit $rc
done
