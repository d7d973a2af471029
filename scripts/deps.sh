#!/usr/bin/env bash
# Installs the Debian packages a make target needs, only those missing.
# Usage: scripts/deps.sh test|e2e|demo
set -euo pipefail
case "${1:-test}" in
  test) pkgs=(git gpgv gnupg rpm dnf createrepo-c apt-utils dpkg-dev chromium) ;;
  e2e)  pkgs=(git gpgv gnupg rpm dnf dnf-plugins-core createrepo-c apt-utils dpkg-dev pbuilder debootstrap build-essential debhelper devscripts lintian rpmlint) ;;
  demo) pkgs=(git) ;;
  *) echo "deps.sh: unknown set $1 (want test, e2e or demo)" >&2; exit 2 ;;
esac
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "deps.sh: missing Debian packages: ${missing[*]}; run as root or install them" >&2
  exit 1
fi
echo "deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
