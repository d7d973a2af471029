package web

import (
	"net/url"
	"strconv"
	"strings"
)

const (
	defaultLimit = 50
	maxLimit     = 500
)

// params reads query parameters, remembering the first one that is bad so a
// handler can check once after reading them all.
type params struct {
	q   url.Values
	err error
}

func (p *params) str(name string) string { return strings.TrimSpace(p.q.Get(name)) }

func (p *params) bad(name, reason string) {
	if p.err == nil {
		p.err = badParam{name, reason}
	}
}

func (p *params) status(name string) Status {
	v := Status(p.str(name))
	if v != "" && !v.Valid() {
		p.bad(name, "unknown status "+strconv.Quote(string(v))+"; want one of "+statusList())
	}
	return v
}

func (p *params) intIn(name string, def, lo, hi int) int {
	v := p.str(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		p.bad(name, strconv.Quote(v)+" is not a whole number")
		return def
	}
	if n < lo || n > hi {
		p.bad(name, strconv.Itoa(n)+" is outside "+strconv.Itoa(lo)+".."+strconv.Itoa(hi))
		return def
	}
	return n
}

func (p *params) offsetLimit() (offset, limit int) {
	return p.intIn("offset", 0, 0, 1<<30), p.intIn("limit", defaultLimit, 1, maxLimit)
}

func statusList() string {
	s := make([]string, len(Statuses))
	for i, v := range Statuses {
		s[i] = string(v)
	}
	return strings.Join(s, ", ")
}

// with returns the current query with one parameter set (or removed when
// value is empty), for filter and pagination links that keep the others.
func with(q url.Values, name, value string) string {
	c := make(url.Values, len(q))
	for k, v := range q {
		c[k] = v
	}
	if value == "" {
		c.Del(name)
	} else {
		c.Set(name, value)
	}
	if len(c) == 0 {
		return "?"
	}
	return "?" + c.Encode()
}

// pager is the "previous / next" links of a paginated list.
type pager struct {
	Total, From, To int
	Prev, Next      string
}

func newPager(q url.Values, offset, limit, shown, total int) pager {
	p := pager{Total: total, From: offset + 1, To: offset + shown}
	if shown == 0 {
		p.From = offset
	}
	if offset > 0 {
		p.Prev = with(q, "offset", strconv.Itoa(max(0, offset-limit)))
	}
	if offset+shown < total {
		p.Next = with(q, "offset", strconv.Itoa(offset+limit))
	}
	return p
}
