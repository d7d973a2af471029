package web

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

type sseEvent struct {
	id, event, data string
}

// readEvents parses a server-sent event stream onto a channel until it ends.
func readEvents(t *testing.T, resp *http.Response) <-chan sseEvent {
	t.Helper()
	ch := make(chan sseEvent)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(resp.Body)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.event != "" {
					ch <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "id: "):
				ev.id = line[4:]
			case strings.HasPrefix(line, "event: "):
				ev.event = line[7:]
			case strings.HasPrefix(line, "data: "):
				ev.data = line[6:]
			}
		}
	}()
	return ch
}

func nextEvent(t *testing.T, ch <-chan sseEvent) sseEvent {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("stream ended early")
		}
		return ev
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5s")
	}
	return sseEvent{}
}

func openStream(t *testing.T, srv *httptest.Server, path, lastID string) (*http.Response, <-chan sseEvent) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+path, nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "text/event-stream" {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, ct)
	}
	return resp, readEvents(t, resp)
}

func TestLogEvents(t *testing.T) {
	h, src, _ := newTestHandler(t)
	srv := httptest.NewServer(h)
	defer srv.Close()

	_, events := openStream(t, srv, "/builds/11/log/events", "")
	var got []logEvent
	for range 3 {
		ev := nextEvent(t, events)
		var l logEvent
		if ev.event != "line" || json.Unmarshal([]byte(ev.data), &l) != nil {
			t.Fatalf("unexpected event %+v", ev)
		}
		got = append(got, l)
	}
	want := []logEvent{
		{Seq: 0, Step: "checkout", HTML: "$ git checkout 0123456789ab"},
		{Seq: 1, Step: "checkout", HTML: `<span class="af-green">ok</span>`},
		{Seq: 2, Step: "pbuilder", HTML: `&lt;script&gt;alert(&#39;log&#39;)&lt;/script&gt; <span class="ab af-red">error:</span> not really`},
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d = %+v, want %+v", i, got[i], want[i])
		}
	}

	// Lines written while the viewer watches arrive live, then the end.
	src.appendLog(11, "pbuilder", "dpkg-buildpackage: \x1b[33mwarning\x1b[0m <x>")
	ev := nextEvent(t, events)
	if ev.id != "3" || !strings.Contains(ev.data, `\u003cspan class=\"af-yellow\"\u003ewarning\u003c/span\u003e \u0026lt;x\u0026gt;`) {
		t.Errorf("live line: %+v", ev)
	}
	src.finish(11, StatusSuccess)
	if ev := nextEvent(t, events); ev.event != "end" || ev.data != `"success"` {
		t.Errorf("end event: %+v", ev)
	}
	if _, open := <-events; open {
		t.Error("stream stayed open after the end event")
	}

	// A reconnecting browser sends the last id it saw and resumes after it.
	_, resumed := openStream(t, srv, "/builds/11/log/events", "2")
	if ev := nextEvent(t, resumed); ev.id != "3" {
		t.Errorf("resume after 2 started at %q", ev.id)
	}
	if ev := nextEvent(t, resumed); ev.event != "end" {
		t.Errorf("after resume: %+v", ev)
	}
}

// A viewer closing the page must release the Source's follower.
func TestLogEventsDisconnect(t *testing.T) {
	h, src, _ := newTestHandler(t)
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, events := openStream(t, srv, "/builds/11/log/events?from=2", "")
	if ev := nextEvent(t, events); ev.id != "2" {
		t.Fatalf("from=2 started at %q", ev.id)
	}
	resp.Body.Close()
	src.wait(t)
}
