package web

import (
	"html"
	"strconv"
	"strings"
)

// ansiStyle is the SGR state that matters for rendering.
type ansiStyle struct {
	fg, bg string // class suffixes such as "red" or "bright-red"; empty: default
	bold   bool
}

func (s ansiStyle) classes() string {
	var c []string
	if s.bold {
		c = append(c, "ab")
	}
	if s.fg != "" {
		c = append(c, "af-"+s.fg)
	}
	if s.bg != "" {
		c = append(c, "ag-"+s.bg)
	}
	return strings.Join(c, " ")
}

var ansiColours = [8]string{"black", "red", "green", "yellow", "blue", "magenta", "cyan", "white"}

// apply folds one SGR parameter list into the style.
func (s *ansiStyle) apply(params string) {
	codes := strings.Split(params, ";")
	for i := 0; i < len(codes); i++ {
		n, err := strconv.Atoi(codes[i])
		if codes[i] == "" {
			n, err = 0, nil
		}
		if err != nil {
			continue
		}
		switch {
		case n == 0:
			*s = ansiStyle{}
		case n == 1:
			s.bold = true
		case n == 22:
			s.bold = false
		case n >= 30 && n <= 37:
			s.fg = ansiColours[n-30]
		case n >= 90 && n <= 97:
			s.fg = "bright-" + ansiColours[n-90]
		case n == 39:
			s.fg = ""
		case n >= 40 && n <= 47:
			s.bg = ansiColours[n-40]
		case n >= 100 && n <= 107:
			s.bg = "bright-" + ansiColours[n-100]
		case n == 49:
			s.bg = ""
		case n == 38 || n == 48:
			// Extended colours are not rendered, but their arguments must be
			// skipped so they are not read as codes of their own.
			if i+1 < len(codes) && codes[i+1] == "5" {
				i += 2
			} else if i+1 < len(codes) && codes[i+1] == "2" {
				i += 4
			}
		}
	}
}

// RenderANSI turns one line of terminal output into HTML: SGR colours and
// bold become spans with classes styled by kiln.css, every other escape or
// control sequence is dropped, and all text is HTML-escaped.
func RenderANSI(line string) string {
	var out strings.Builder
	var style ansiStyle
	var text strings.Builder
	open := ""
	flush := func() {
		if text.Len() == 0 {
			return
		}
		c := style.classes()
		if c != open {
			if open != "" {
				out.WriteString("</span>")
			}
			if c != "" {
				out.WriteString(`<span class="` + c + `">`)
			}
			open = c
		}
		out.WriteString(html.EscapeString(text.String()))
		text.Reset()
	}
	for i := 0; i < len(line); {
		b := line[i]
		switch {
		case b == 0x1b:
			params, final, next := scanEscape(line, i)
			if final == 'm' {
				flush()
				style.apply(params)
			}
			i = next
		case b == '\t':
			text.WriteByte(b)
			i++
		case b < 0x20 || b == 0x7f:
			i++
		default:
			text.WriteByte(b)
			i++
		}
	}
	flush()
	if open != "" {
		out.WriteString("</span>")
	}
	return out.String()
}

// scanEscape reads the escape sequence starting at line[i] (an ESC). It
// returns a CSI sequence's parameters and final byte (0 for any other kind)
// and the index just past the sequence.
func scanEscape(line string, i int) (params string, final byte, next int) {
	if i+1 >= len(line) {
		return "", 0, len(line)
	}
	switch line[i+1] {
	case '[':
		j := i + 2
		for j < len(line) && (line[j] < 0x40 || line[j] > 0x7e) {
			j++
		}
		if j >= len(line) {
			return "", 0, len(line)
		}
		return line[i+2 : j], line[j], j + 1
	case ']', 'P', '_', '^':
		// String sequences (OSC, DCS, ...) end at BEL or ESC \.
		for j := i + 2; j < len(line); j++ {
			if line[j] == 0x07 {
				return "", 0, j + 1
			}
			if line[j] == 0x1b && j+1 < len(line) && line[j+1] == '\\' {
				return "", 0, j + 2
			}
		}
		return "", 0, len(line)
	default:
		// nF sequences such as ESC ( B carry intermediate bytes before the
		// final one.
		j := i + 1
		for j < len(line) && line[j] >= 0x20 && line[j] <= 0x2f {
			j++
		}
		return "", 0, min(j+1, len(line))
	}
}
