#!/bin/sh
# Captures, by running the real tools, the output the failure-reason tables
# in steps/reasons_test.go read. Run from steps/testdata/failures on a
# Debian bookworm host with dpkg-dev, debhelper, gcc, lintian, rpm,
# rpmbuild and dnf installed:  sh capture.sh
# Nothing on the host changes: apt and dnf only simulate or use a scratch
# root, and every build happens under $W.
set -u
here=$(pwd)
fixtures=$here/..
W=/tmp/kiln-capture
rm -rf "$W"
mkdir -p "$W"
mkdir -p dpkg-source dpkg-buildpackage apt rpmbuild dnf lintian

# out TOOL/CASE CMD...: runs CMD, keeps stdout and stderr interleaved as the
# step's log sees them.
out() { f=$1; shift; "$@" >"$here/$f" 2>&1; echo "$f: exit $?"; }

# 3.0 (quilt) without an orig tarball next to the tree.
mkdir -p "$W/noorig" && cp -r "$fixtures/libgreet" "$W/noorig/libgreet-1.0"
(cd "$W/noorig" && out dpkg-source/no-orig.out dpkg-source -b libgreet-1.0)

# A source package whose orig tarball went missing, unpacked.
mkdir -p "$W/src" && cp -r "$fixtures/hello" "$W/src/hello-1.0"
(cd "$W/src" && tar --exclude=debian -czf hello_1.0.orig.tar.gz hello-1.0 && dpkg-source -b hello-1.0 >/dev/null 2>&1)
mkdir -p "$W/x" && cp "$W/src/hello_1.0-3.dsc" "$W/src/hello_1.0-3.debian.tar.xz" "$W/x/"
(cd "$W/x" && out dpkg-source/x-missing-orig.out dpkg-source -x hello_1.0-3.dsc)

# An upstream file changed in the tree without a patch in debian/patches.
mkdir -p "$W/changed" && cp -r "$W/src/hello-1.0" "$W/src/hello_1.0.orig.tar.gz" "$W/changed/"
echo 'echo changed' >>"$W/changed/hello-1.0/hello"
(cd "$W/changed" && out dpkg-source/upstream-changes.out dpkg-source -b hello-1.0)

# greeter needs libgreet-dev, which no host has.
cp -r "$fixtures/greeter" "$W/greeter"
(cd "$W/greeter" && out dpkg-buildpackage/unmet-build-deps.out dpkg-buildpackage -us -uc -b)

# A syntax error in libgreet.
cp -r "$fixtures/libgreet" "$W/libgreet"
printf '#include "greet.h"\nconst char *greet(const char *n) { return n }\n' >"$W/libgreet/greet.c"
(cd "$W/libgreet" && out dpkg-buildpackage/compile-error.out dpkg-buildpackage -us -uc -b)

# apt resolving greeter's build dependencies, as pbuilder's apt resolver
# (apt-get build-dep DSC) and sbuild do; -s: simulate only.
mkdir -p "$W/greeter-src" && cp -r "$fixtures/greeter" "$W/greeter-src/greeter-1.0"
(cd "$W/greeter-src" && dpkg-source -b greeter-1.0 >/dev/null 2>&1 && out apt/build-dep-unmet.out apt-get -s build-dep ./greeter_1.0.dsc)

# rpmbuild against an empty rpm database (a fresh build root's).
for p in greeter libgreet; do
  mkdir -p "$W/rpm-$p/SOURCES" "$W/rpm-$p/db"
  cp -r "$fixtures/$p" "$W/rpm-$p/$p-1.0"
done
printf '#include "greet.h"\nconst char *greet(const char *n) { return n }\n' >"$W/rpm-libgreet/libgreet-1.0/greet.c"
for p in greeter libgreet; do
  (cd "$W/rpm-$p" && tar -czf "SOURCES/$p-1.0.tar.gz" "$p-1.0" && rpm --initdb --dbpath "$W/rpm-$p/db")
done
(cd "$W/rpm-greeter" && out rpmbuild/failed-build-deps.out rpmbuild --define "_topdir $W/rpm-greeter" --dbpath "$W/rpm-greeter/db" -bb greeter-1.0/greeter.spec)
(cd "$W/rpm-libgreet" && out rpmbuild/compile-error.out rpmbuild --define "_topdir $W/rpm-libgreet" --dbpath "$W/rpm-libgreet/db" --nodeps -bb libgreet-1.0/libgreet.spec)

# dnf installing greeter's build dependencies into a scratch root that
# knows no repository providing them, as mock does in its chroot.
mkdir -p "$W/dnf/root" "$W/dnf/repos"
out dnf/builddep-missing.out dnf -y --installroot="$W/dnf/root" --setopt=reposdir="$W/dnf/repos" --releasever=9 builddep "$W/rpm-greeter/greeter-1.0/greeter.spec"

# lintian over a revision -3 upload whose orig tarball is not next to the
# .changes (what pbuilder's result directory held), and over one with
# known findings. lintian runs as nobody, as the step runs it.
lint_dist() { # DIR CHANGELOG-DISTRIBUTION KEEP-COPYRIGHT KEEP-ORIG
  mkdir -p "$1/b" "$1/dist" && cp -r "$fixtures/hello" "$1/b/hello-1.0"
  sed -i "1s/bookworm/$2/" "$1/b/hello-1.0/debian/changelog"
  [ "$3" = yes ] || rm "$1/b/hello-1.0/debian/copyright"
  (cd "$1/b" && tar --exclude=debian -czf hello_1.0.orig.tar.gz hello-1.0 && cd hello-1.0 && dpkg-buildpackage -us -uc >/dev/null 2>&1)
  ch="$1/b/hello_1.0-3_amd64.changes"
  cp "$ch" "$1/dist/"
  for f in $(sed -n '/^Files:/,/^[^ ]/p' "$ch" | awk 'NF==5{print $5}'); do cp "$1/b/$f" "$1/dist/"; done
  [ "$4" = no ] || cp "$1/b/hello_1.0.orig.tar.gz" "$1/dist/"
  chown -R nobody:nogroup "$1/dist"
}
lint() { # DIR OUT
  (cd "$1/dist" && out "$2" env HOME="$1/dist" setpriv --reuid=nobody --regid=nogroup --clear-groups --inh-caps=-all lintian --fail-on none --tag-display-limit 0 hello_1.0-3_amd64.changes)
}
lint_dist "$W/lint-noorig" bookworm yes no && lint "$W/lint-noorig" lintian/missing-orig.out
lint_dist "$W/lint-findings" kiln-dev no yes && lint "$W/lint-findings" lintian/findings.out

rm -rf "$W"
