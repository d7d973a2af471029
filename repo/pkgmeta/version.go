package pkgmeta

import "strings"

// Compare orders two versions of the same package: negative when a is
// older, positive when newer. Debs follow dpkg's rules, rpms rpmvercmp's.
func Compare(a, b *Package) int {
	if a.Format == Deb {
		return compareDeb(a.Version, b.Version)
	}
	if a.Epoch != b.Epoch {
		return a.Epoch - b.Epoch
	}
	if c := rpmvercmp(a.Version, b.Version); c != 0 {
		return c
	}
	return rpmvercmp(a.Release, b.Release)
}

func compareDeb(a, b string) int {
	ea, ua, ra := splitDebVersion(a)
	eb, ub, rb := splitDebVersion(b)
	if ea != eb {
		if ea < eb {
			return -1
		}
		return 1
	}
	if c := debVerCmp(ua, ub); c != 0 {
		return c
	}
	return debVerCmp(ra, rb)
}

func splitDebVersion(v string) (epoch int, upstream, revision string) {
	if e, rest, ok := strings.Cut(v, ":"); ok {
		for _, c := range e {
			epoch = epoch*10 + int(c-'0')
		}
		v = rest
	}
	if i := strings.LastIndexByte(v, '-'); i >= 0 {
		return epoch, v[:i], v[i+1:]
	}
	return epoch, v, ""
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// debOrder ranks a non-digit character: '~' sorts before everything, even
// the end of the string; letters before other characters.
func debOrder(s string, i int) int {
	if i >= len(s) {
		return 0
	}
	c := s[i]
	switch {
	case isDigit(c):
		return 0
	case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
		return int(c)
	case c == '~':
		return -1
	}
	return int(c) + 256
}

func debVerCmp(a, b string) int {
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		for i < len(a) && !isDigit(a[i]) || j < len(b) && !isDigit(b[j]) {
			ca, cb := debOrder(a, i), debOrder(b, j)
			if ca != cb {
				return ca - cb
			}
			i++
			j++
		}
		for i < len(a) && a[i] == '0' {
			i++
		}
		for j < len(b) && b[j] == '0' {
			j++
		}
		diff := 0
		for i < len(a) && isDigit(a[i]) && j < len(b) && isDigit(b[j]) {
			if diff == 0 {
				diff = int(a[i]) - int(b[j])
			}
			i++
			j++
		}
		if i < len(a) && isDigit(a[i]) {
			return 1
		}
		if j < len(b) && isDigit(b[j]) {
			return -1
		}
		if diff != 0 {
			return diff
		}
	}
	return 0
}

// rpmvercmp compares alternating alphabetic and numeric segments; '~'
// sorts before anything and '^' after the end of the other string.
func rpmvercmp(a, b string) int {
	if a == b {
		return 0
	}
	isAlpha := func(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
	isSep := func(c byte) bool { return !isAlpha(c) && !isDigit(c) && c != '~' && c != '^' }
	for len(a) > 0 || len(b) > 0 {
		for len(a) > 0 && isSep(a[0]) {
			a = a[1:]
		}
		for len(b) > 0 && isSep(b[0]) {
			b = b[1:]
		}
		if len(a) > 0 && a[0] == '~' || len(b) > 0 && b[0] == '~' {
			if len(a) == 0 || a[0] != '~' {
				return 1
			}
			if len(b) == 0 || b[0] != '~' {
				return -1
			}
			a, b = a[1:], b[1:]
			continue
		}
		if len(a) > 0 && a[0] == '^' || len(b) > 0 && b[0] == '^' {
			if len(a) == 0 {
				return -1
			}
			if len(b) == 0 {
				return 1
			}
			if a[0] != '^' {
				return 1
			}
			if b[0] != '^' {
				return -1
			}
			a, b = a[1:], b[1:]
			continue
		}
		if len(a) == 0 || len(b) == 0 {
			break
		}
		numeric := isDigit(a[0])
		take := func(s string) (string, string) {
			n := 0
			for n < len(s) && (numeric && isDigit(s[n]) || !numeric && isAlpha(s[n])) {
				n++
			}
			return s[:n], s[n:]
		}
		var sa, sb string
		sa, a = take(a)
		sb, b = take(b)
		if sb == "" {
			// Numeric segments are newer than alphabetic ones.
			if numeric {
				return 1
			}
			return -1
		}
		if numeric {
			sa, sb = strings.TrimLeft(sa, "0"), strings.TrimLeft(sb, "0")
			if len(sa) != len(sb) {
				return len(sa) - len(sb)
			}
		}
		if c := strings.Compare(sa, sb); c != 0 {
			return c
		}
	}
	switch {
	case len(a) == 0 && len(b) == 0:
		return 0
	case len(a) == 0:
		return -1
	}
	return 1
}
