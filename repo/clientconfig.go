package repo

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/kiln-build/kiln/repo/apt"
	"github.com/kiln-build/kiln/repo/pkgmeta"
)

// ClientConfig returns what a machine needs to use a channel's target:
// for apt a deb822 .sources file with the armored public key inline in
// Signed-By; for yum a .repo file with gpgcheck and repo_gpgcheck on, whose
// gpgkey points at KeyPath(t), where the caller installs pubKey.
// baseURL is where the repositories are mounted, e.g. http://farm:8010/repos.
func ClientConfig(channel string, t Target, baseURL string, pubKey []byte) (string, error) {
	if err := checkChannel(channel); err != nil {
		return "", err
	}
	if t.Key == "" {
		t.Key = "kiln" // the key name only matters for signing, not here
	}
	if err := t.validate(); err != nil {
		return "", err
	}
	if !bytes.Contains(pubKey, []byte("-----BEGIN PGP PUBLIC KEY BLOCK-----")) {
		return "", fmt.Errorf("client config: %w: public key is not an armored OpenPGP key", ErrInvalid)
	}
	base := strings.TrimSuffix(baseURL, "/") + "/" + channel + "/" + t.Dir()
	var b strings.Builder
	if t.Format == pkgmeta.Deb {
		fmt.Fprintf(&b, "Types: deb deb-src\nURIs: %s\nSuites: %s\nComponents: %s\nArchitectures: %s\nSigned-By:\n", base, t.codename(), apt.Component, t.Arch)
		// deb822 continuation lines: a leading space, and " ." for an empty line.
		for _, line := range strings.Split(strings.TrimRight(string(pubKey), "\n"), "\n") {
			line = strings.TrimRight(line, "\r")
			if line == "" {
				line = "."
			}
			b.WriteString(" " + line + "\n")
		}
		return b.String(), nil
	}
	id := fmt.Sprintf("kiln-%s-%s-%s-%s", channel, t.Distro, t.Version, t.Arch)
	fmt.Fprintf(&b, "[%s]\nname=Kiln %s %s\nbaseurl=%s\nenabled=1\ngpgcheck=1\nrepo_gpgcheck=1\ngpgkey=file://%s\n", id, channel, t, base, KeyPath(channel))
	// Off, as distributions ship theirs: dnf debuginfo-install (and
	// --enablerepo='*-debuginfo') turns on the repositories so named.
	fmt.Fprintf(&b, "\n[%s-debuginfo]\nname=Kiln %s %s debug\nbaseurl=%s/%s\nenabled=0\ngpgcheck=1\nrepo_gpgcheck=1\ngpgkey=file://%s\n", id, channel, t, base, YumDebugDir, KeyPath(channel))
	return b.String(), nil
}

// KeyPath is where the .repo from ClientConfig expects the public key.
func KeyPath(channel string) string {
	return "/etc/pki/rpm-gpg/RPM-GPG-KEY-kiln-" + channel
}
