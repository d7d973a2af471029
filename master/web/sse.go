package web

import (
	"bufio"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// keepAlive is how often an idle log stream gets a comment line, so proxies
// that close quiet connections leave it open during long silent steps.
const keepAlive = 15 * time.Second

// flushEvery bounds how many history lines are buffered before a flush; live
// lines are flushed as soon as nothing else is waiting.
const flushEvery = 256

type logEvent struct {
	Seq  int64  `json:"seq"`
	Step string `json:"step"`
	// HTML is the line rendered by RenderANSI: escaped, with colour spans.
	HTML string `json:"html"`
}

// logEvents streams a build's log as server-sent events: "line" events whose
// id is the line's sequence number, so EventSource's automatic reconnect
// resumes where it stopped, then one "end" event carrying the final status.
func (s *server) logEvents(w http.ResponseWriter, r *http.Request) {
	id, err := buildID(r)
	if err != nil {
		s.sourceError(w, r, "build "+r.PathValue("id"), err)
		return
	}
	p := params{q: r.URL.Query()}
	from := int64(p.intIn("from", 0, 0, 1<<62))
	if p.err != nil {
		s.fail(w, r, http.StatusBadRequest, p.err.Error())
		return
	}
	if last := r.Header.Get("Last-Event-ID"); last != "" {
		if n, err := strconv.ParseInt(last, 10, 64); err == nil && n >= 0 {
			from = n + 1
		}
	}
	ctx := r.Context()
	lines, err := s.src.FollowLog(ctx, id, from)
	if err != nil {
		s.sourceError(w, r, "build "+strconv.FormatInt(id, 10), err)
		return
	}
	// The stream outlives any write timeout the master's server sets for
	// ordinary pages.
	rc := http.NewResponseController(w)
	if err := rc.SetWriteDeadline(time.Time{}); err != nil && err != http.ErrNotSupported {
		s.log.Warn("web: log stream deadline", "build", id, "err", err)
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 32<<10)
	flush := func() bool {
		return bw.Flush() == nil && rc.Flush() == nil
	}
	if !flush() {
		return
	}
	tick := time.NewTicker(keepAlive)
	defer tick.Stop()
	pending := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			bw.WriteString(": keep-alive\n\n")
			if !flush() {
				return
			}
		case l, ok := <-lines:
			if !ok {
				s.writeEnd(r, bw, id)
				flush()
				return
			}
			data, _ := json.Marshal(logEvent{Seq: l.Seq, Step: l.Step, HTML: RenderANSI(strings.TrimRight(l.Text, "\r\n"))})
			bw.WriteString("id: " + strconv.FormatInt(l.Seq, 10) + "\nevent: line\ndata: ")
			bw.Write(data)
			bw.WriteString("\n\n")
			pending++
			if len(lines) == 0 || pending >= flushEvery {
				pending = 0
				if !flush() {
					return
				}
			}
		}
	}
}

func (s *server) writeEnd(r *http.Request, bw *bufio.Writer, id int64) {
	status := ""
	if b, err := s.src.Build(r.Context(), id); err == nil {
		status = string(b.Status)
	}
	bw.WriteString("event: end\ndata: ")
	// Status values are plain words, but the source is not ours to trust.
	data, _ := json.Marshal(status)
	bw.Write(data)
	bw.WriteString("\n\n")
}
