package web

import (
	"regexp"
	"strings"
	"testing"
)

func TestRenderANSI(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"plain", "hello", "hello"},
		{"empty", "", ""},
		{"escapes html", `<script>alert("x")</script> & 'q'`, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &#39;q&#39;"},
		{"red then reset", "\x1b[31merror\x1b[0m done", `<span class="af-red">error</span> done`},
		{"bold bright", "\x1b[1;92mok\x1b[m", `<span class="ab af-bright-green">ok</span>`},
		{"background", "\x1b[41;37m FAIL \x1b[49m x", `<span class="af-white ag-red"> FAIL </span><span class="af-white"> x</span>`},
		{"bright background", "\x1b[103mwarn", `<span class="ag-bright-yellow">warn</span>`},
		{"default fg keeps bold", "\x1b[1;34ma\x1b[39mb\x1b[22mc", `<span class="ab af-blue">a</span><span class="ab">b</span>c`},
		{"all fg", "\x1b[30m0\x1b[33m3\x1b[35m5\x1b[36m6\x1b[97m7", `<span class="af-black">0</span><span class="af-yellow">3</span><span class="af-magenta">5</span><span class="af-cyan">6</span><span class="af-bright-white">7</span>`},
		{"256 colour arguments skipped", "\x1b[38;5;196;1mx", `<span class="ab">x</span>`},
		{"truecolour arguments skipped", "\x1b[48;2;1;2;3;32mx", `<span class="af-green">x</span>`},
		{"cursor moves stripped", "\x1b[2K\x1b[1Gprogress 50%", "progress 50%"},
		{"osc title stripped", "\x1b]0;title\x07after", "after"},
		{"osc st stripped", "\x1b]8;;http://x\x1b\\link", "link"},
		{"charset select stripped", "\x1b(Bx", "x"},
		{"control chars dropped, tab kept", "a\rb\x00c\td\x7f", "abc\td"},
		{"unterminated csi dropped", "x\x1b[31", "x"},
		{"lone esc dropped", "x\x1b", "x"},
		{"script inside colour", "\x1b[31m<script>alert(1)</script>\x1b[0m", `<span class="af-red">&lt;script&gt;alert(1)&lt;/script&gt;</span>`},
		{"redundant sgr adds no span", "\x1b[31ma\x1b[31mb", `<span class="af-red">ab</span>`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := RenderANSI(tt.in); got != tt.want {
				t.Errorf("RenderANSI(%q)\n got %s\nwant %s", tt.in, got, tt.want)
			}
		})
	}
}

var spanTag = regexp.MustCompile(`<span class="(ab|af-[a-z-]+|ag-[a-z-]+)( (af|ag)-[a-z-]+)*">|</span>`)

// Whatever a build prints, the only markup in the output is our own spans,
// and no control character survives.
func FuzzRenderANSI(f *testing.F) {
	for _, s := range []string{"\x1b[31m<b>x</b>", "\x1b]0;t\x07<", "\x1b[38;5;1m&amp;", "a\x1b[", "\x1b[1;2;3;4;5;6;7;8;9m\"'"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out := RenderANSI(in)
		bare := spanTag.ReplaceAllString(out, "")
		if strings.ContainsAny(bare, "<>\"'") {
			t.Errorf("RenderANSI(%q) = %q: markup outside our spans", in, out)
		}
		for _, r := range bare {
			if r < 0x20 && r != '\t' || r == 0x7f {
				t.Errorf("RenderANSI(%q) = %q: control character %U kept", in, out, r)
			}
		}
	})
}
