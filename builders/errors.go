package builders

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ErrInvalid is wrapped by every Errors value, so callers that only need to
// know "the config is bad" can use errors.Is without unpacking positions.
var ErrInvalid = errors.New("invalid configuration")

// Error is one problem in a configuration, with where it is and, when there is
// an obvious fix, a hint.
type Error struct {
	File   string
	Line   int // 1-based; 0 when unknown (hand-built configs)
	Column int // 1-based; 0 when the YAML parser does not report it
	Path   string
	Msg    string
	Hint   string
}

// Error formats file:line:col: path: msg (hint: ...), leaving out the parts
// that are unknown.
func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteByte(':')
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, "%d:", e.Line)
		if e.Column > 0 {
			fmt.Fprintf(&b, "%d:", e.Column)
		}
	}
	if b.Len() > 0 {
		b.WriteByte(' ')
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	if e.Hint != "" {
		b.WriteString(" (hint: ")
		b.WriteString(e.Hint)
		b.WriteByte(')')
	}
	return b.String()
}

// Errors is every problem found in a configuration, sorted by position.
type Errors []*Error

// Error lists the problems one per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Is makes errors.Is(err, ErrInvalid) true for any Errors.
func (es Errors) Is(target error) bool { return target == ErrInvalid }

func (es Errors) sort() {
	slices.SortStableFunc(es, func(a, b *Error) int {
		return cmp.Or(
			cmp.Compare(a.File, b.File),
			cmp.Compare(a.Line, b.Line),
			cmp.Compare(a.Column, b.Column),
			cmp.Compare(a.Path, b.Path),
			cmp.Compare(a.Msg, b.Msg),
		)
	})
}

// err returns es as an error, nil when empty, sorted.
func (es Errors) err() error {
	if len(es) == 0 {
		return nil
	}
	es.sort()
	return es
}

// suggest returns "did you mean `x`?" for the candidate closest to got, or ""
// when none is close enough to be a likely typo.
func suggest(got string, candidates []string) string {
	got = strings.ToLower(got)
	if len(got) < 3 {
		return ""
	}
	best, bestDist := "", -1
	for _, c := range candidates {
		d := editDistance(got, c)
		if bestDist < 0 || d < bestDist || (d == bestDist && c < best) {
			best, bestDist = c, d
		}
	}
	if best == "" || bestDist > len(got)/3+1 {
		// A key written without its qualifier (hash for password_hash).
		var within []string
		for _, c := range candidates {
			if len(got) >= 3 && strings.Contains(c, got) {
				within = append(within, c)
			}
		}
		if len(within) != 1 {
			return ""
		}
		best = within[0]
	}
	return "did you mean `" + best + "`?"
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
