#!/usr/bin/env bash
# Makes the user a root worker runs sbuild and mmdebstrap as (kind sbuild,
# unshare mode): a system user with a home and subordinate uid and gid
# ranges, which newuidmap maps into the build's user namespace. Idempotent.
# Usage: scripts/sbuild-user.sh [USER]
set -euo pipefail
user=${1:-kiln-sbuild}
if ! id "$user" >/dev/null 2>&1; then
  useradd --system --create-home --home-dir "/var/lib/$user" --shell /usr/sbin/nologin "$user"
fi
if ! grep -q "^$user:" /etc/subuid 2>/dev/null || ! grep -q "^$user:" /etc/subgid 2>/dev/null; then
  # The first free 65536-id range above every range already given out.
  start=$(cat /etc/subuid /etc/subgid 2>/dev/null | awk -F: 'BEGIN{m=100000} {e=$2+$3; if (e>m) m=e} END{print m}')
  usermod --add-subuids "$start-$((start + 65535))" --add-subgids "$start-$((start + 65535))" "$user"
fi
