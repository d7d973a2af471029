#!/usr/bin/env bash
# Installs the Debian packages a make target needs, only those missing.
# Usage: scripts/deps.sh test|e2e|demo
set -euo pipefail
# The unit tests drive the real tools (rpm, dnf, apt, gpgv, dpkg-buildpackage,
# pristine-tar, lintian, rpmlint, chromium); the end-to-end tests add
# pbuilder's chroots.
test_pkgs=(git gpgv gnupg xz-utils rpm dnf dnf-plugins-core createrepo-c apt-utils dpkg-dev
  build-essential debhelper lintian rpmlint chromium pristine-tar)
case "${1:-test}" in
  test) pkgs=("${test_pkgs[@]}") ;;
  e2e)  pkgs=("${test_pkgs[@]}" pbuilder debootstrap devscripts sbuild mmdebstrap uidmap) ;;
  demo) pkgs=(git) ;;
  *) echo "deps.sh: unknown set $1 (want test, e2e or demo)" >&2; exit 2 ;;
esac
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
sbuild_user() {
  # kind sbuild builds as an unprivileged user with subordinate ids.
  if [ "${1:-test}" = e2e ] && [ "$(id -u)" -eq 0 ]; then
    "$(dirname "$0")/sbuild-user.sh"
  fi
}
if [ ${#missing[@]} -eq 0 ]; then sbuild_user "${1:-test}"; exit 0; fi
if [ "$(id -u)" -ne 0 ]; then
  echo "deps.sh: missing Debian packages: ${missing[*]}; run as root or install them" >&2
  exit 1
fi
echo "deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
sbuild_user "${1:-test}"
