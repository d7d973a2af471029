package builders

import (
	"regexp"
	"strings"
)

// Name rules. Component, distro, version and arch names become directory
// names and parts of builder names, so they must be safe as path elements:
// Debian source package rules plus underscore (x86_64), never starting with a
// dot. Worker and channel names are used as they are in NATS subjects and URL
// paths, so they are tokens: no dots.
var (
	namePattern  = regexp.MustCompile(`^[a-z0-9][a-z0-9._+-]*$`)
	tokenPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)
	labelPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`) // templates, step names, users
	propPattern  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]*$`)
)

const maxNameLen = 100

const (
	nameRule  = "lower-case letters, digits and . _ + -, starting with a letter or digit"
	tokenRule = "lower-case letters, digits, _ and -, starting with a letter or digit"
	labelRule = "letters, digits and . _ -, starting with a letter or digit"
	propRule  = "letters, digits and . _ -, starting with a letter or _"
)

func validName(re *regexp.Regexp, s string) bool { return len(s) <= maxNameLen && re.MatchString(s) }

// SubjectToken encodes a builder name (or any name) as one NATS subject
// token that is also a valid JetStream stream, consumer, KV key and object
// name: letters, digits and - are kept, every other byte becomes _ and two
// lower-case hex digits. The encoding is injective, so tokens never collide:
// "opencore@debian/bookworm/amd64" → "opencore_40debian_2fbookworm_2famd64".
func SubjectToken(name string) string {
	const hex = "0123456789abcdef"
	var b strings.Builder
	b.Grow(len(name) + 8)
	for i := range len(name) {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-':
			b.WriteByte(c)
		default:
			b.WriteByte('_')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
	return b.String()
}

// BuilderName is the name of a component's builder on a target.
func BuilderName(component string, t Target) string { return component + "@" + t.String() }
