package web

import (
	"net/http/httptest"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/kiln-build/kiln/master/web/webtest"
)

func TestBrowser(t *testing.T) {
	ctx, closeBrowser := webtest.NewBrowser(t)
	dir := webtest.ArtifactsDir(t)

	src := smallFarm()
	acts := &testActions{src: src}
	srv := httptest.NewServer(New(testOptions(src, acts)))
	big := httptest.NewServer(New(testOptions(largeFarm(20000), nil)))
	// Cleanups run last first: the browser, then the servers, then the check
	// that every log follower ended with its stream.
	t.Cleanup(func() { src.wait(t) })
	t.Cleanup(srv.Close)
	t.Cleanup(big.Close)
	t.Cleanup(closeBrowser)
	webtest.RunScenario(t, ctx, webtest.Farm{
		URL:          srv.URL,
		RunningBuild: 11,
		PushLog:      func(text string) { src.appendLog(11, "pbuilder", text) },
		User:         testUser,
		Password:     testPassword,
		Forced: func() bool {
			for _, c := range acts.seen() {
				if c.Op == "force" && c.User == testUser && c.Component == "opencore" && c.Rev == "main" {
					return true
				}
			}
			return false
		},
	}, dir)

	// The other pages, for a person to look at.
	for _, page := range []string{"workers", "changes", "repos", "builds"} {
		err := chromedp.Do(ctx,
			chromedp.Navigate(srv.URL+"/"+page),
			chromedp.WaitVisible(chromedp.CSS(`footer`)),
			webtest.Screenshot(dir, page+".png"),
		)
		if err != nil {
			t.Fatalf("%s page: %v", page, err)
		}
	}

	// The grid at full farm size, to look at how it reads.
	err := chromedp.Do(ctx,
		chromedp.Navigate(big.URL+"/"),
		chromedp.WaitVisible(chromedp.CSS(`#grid`)),
		webtest.Screenshot(dir, "grid-large.png"),
	)
	if err != nil {
		t.Fatalf("large grid: %v", err)
	}
	cells, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#grid td a').length`))
	if err != nil {
		t.Fatalf("large grid: %v", err)
	}
	if cells < 4300 {
		t.Errorf("large grid shows %d cells, want at least 4300", cells)
	}
	t.Logf("screenshots in %s", dir)
}
