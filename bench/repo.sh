#!/usr/bin/env bash
# Repository publishing benchmarks (docs/benchmarks.md, "Repository publishing").
#
# One run gives the ratios: BenchmarkFullIndex2000 generates 2,000 small
# packages per format, then in each iteration times Kiln's full index
# (cold cache), Kiln including reading every file, and the reference tool
# (apt-ftparchive packages / createrepo_c --workers 2 --no-database) on the
# same files. BenchmarkAddOneTo10000 adds one package to a 10,000-package
# target and publishes end to end (goal: under 100 ms).
#
# Needs: go, apt-utils (apt-ftparchive), createrepo-c.
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in apt-ftparchive createrepo_c; do
	command -v "$tool" >/dev/null || { echo "bench/repo.sh: $tool is missing (apt-get install apt-utils createrepo-c)" >&2; exit 1; }
done

count=${COUNT:-5}
out=$(go test -run '^$' -bench 'FullIndex2000|AddOneTo10000' -benchtime "${count}x" -timeout 60m ./repo/ | tee /dev/stderr)

echo
echo "== Repository publishing ($(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)) =="
awk '
/^BenchmarkFullIndex2000\// {
	split($1, n, "/"); fmt = n[2]; sub(/-[0-9]+$/, "", fmt)
	for (i = 3; i < NF; i++) m[$(i+1)] = $i
	tool = (fmt == "deb") ? "apt-ftparchive" : "createrepo_c"
	printf "full index, 2000 %s: kiln %s ms, kiln+read %s ms, %s %s ms; %s/kiln = %.1fx, %s/(kiln+read) = %.1fx\n",
		fmt, m["kiln-ms"], m["kiln+read-ms"], tool, m[tool "-ms"], tool, m["ratio-vs-kiln"], tool, m["ratio-vs-kiln+read"]
	delete m
}
/^BenchmarkAddOneTo10000\// {
	split($1, n, "/"); fmt = n[2]; sub(/-[0-9]+$/, "", fmt)
	printf "add one to 10000 %s and publish: %.1f ms (goal < 100 ms)\n", fmt, $3 / 1e6
}' <<<"$out"
