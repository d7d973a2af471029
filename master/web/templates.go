package web

import (
	"fmt"
	"html/template"
	"strings"
	"time"
)

var funcs = template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04:05")
	},
	"iso": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339)
	},
	"dur":       duration,
	"ago":       ago,
	"until":     until,
	"size":      humanSize,
	"short":     func(rev string) string { return rev[:min(len(rev), 12)] },
	"firstLine": func(s string) string { first, _, _ := strings.Cut(s, "\n"); return first },
	"moreLines": func(s string) string { _, rest, _ := strings.Cut(s, "\n"); return strings.TrimSpace(rest) },
	"join":      strings.Join,
	"finished":  Status.Finished,
	"dict":      dict,
	"ansi":      ansiText,
}

// ansiText renders multi-line text a user or a tool wrote (commit messages,
// summaries) like log lines: escaped, with terminal colours as spans and
// other escape sequences dropped, so none reaches the page raw.
func ansiText(s string) template.HTML {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = RenderANSI(l)
	}
	return template.HTML(strings.Join(lines, "\n"))
}

// dict lets a template pass several values to a shared block.
func dict(kv ...any) (map[string]any, error) {
	if len(kv)%2 != 0 {
		return nil, fmt.Errorf("dict: odd number of arguments")
	}
	m := make(map[string]any, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		k, ok := kv[i].(string)
		if !ok {
			return nil, fmt.Errorf("dict: key %v is not a string", kv[i])
		}
		m[k] = kv[i+1]
	}
	return m, nil
}

// duration is how long something ran, or has been running when end is zero.
func duration(start, end, now time.Time) string {
	if start.IsZero() {
		return ""
	}
	if end.IsZero() {
		end = now
	}
	d := end.Sub(start)
	if d < 0 {
		d = 0
	}
	// Package builds on a farm often take milliseconds (nfpm, trivial
	// steps); "0s" would hide the difference between them.
	if d < time.Second {
		return fmt.Sprintf("%dms", d.Milliseconds())
	}
	d = d.Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	default:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
}

func ago(t, now time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return duration(t, now, now) + " ago"
}

// until is how soon something scheduled happens; "due" once its time has
// passed, since the poller may be a moment late picking it up.
func until(t, now time.Time) string {
	if !t.After(now) {
		return "due"
	}
	return "in " + duration(now, t, now)
}

func humanSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

var pageNames = []string{"grid", "builds", "build", "workers", "changes", "repos", "login", "error"}

// mustParsePages parses each page with the shared layout into a template set
// of its own, since every page defines the same "content" block.
func mustParsePages() map[string]*template.Template {
	base := template.Must(template.New("").Funcs(funcs).ParseFS(templateFS, "templates/layout.tmpl"))
	pages := make(map[string]*template.Template, len(pageNames))
	for _, name := range pageNames {
		pages[name] = template.Must(template.Must(base.Clone()).ParseFS(templateFS, "templates/"+name+".tmpl"))
	}
	return pages
}
