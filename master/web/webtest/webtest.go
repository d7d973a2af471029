// Package webtest drives Debian's chromium through Kiln's web page: the
// acceptance walk of the status page, shared by master/web's own test (against
// an in-memory farm) and the master's (against the real thing).
package webtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/kiln-build/kiln/internal/kilntest"
)

const chromiumPath = "/usr/bin/chromium"

// Farm is what the scenario needs from whatever serves the pages: the
// in-memory source of master/web's tests, or a real master.
type Farm struct {
	URL string
	// RunningBuild is a running build the grid links to.
	RunningBuild int64
	// PushLog makes the farm emit one more log line for RunningBuild.
	PushLog        func(text string)
	User, Password string
	// Forced reports whether a force by User reached the farm.
	Forced func() bool
}

// NewBrowser starts Debian's chromium headless with a fresh profile. The
// caller closes it with the returned function before closing the servers it
// visited, whose Close waits for the browser's open log streams.
func NewBrowser(t *testing.T) (context.Context, func()) {
	t.Helper()
	kilntest.NeedTool(t, chromiumPath)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelBrowser := chromedp.NewContext(actx)
	closeBrowser := func() {
		cancelBrowser()
		cancelAlloc()
	}
	if err := chromedp.Do(ctx); err != nil {
		closeBrowser()
		t.Fatalf("start chromium: %v", err)
	}
	return ctx, closeBrowser
}

// ArtifactsDir is where screenshots go: $KILN_TEST_ARTIFACTS when set, so CI
// can keep them, else a directory removed after the test.
func ArtifactsDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("KILN_TEST_ARTIFACTS")
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Screenshot saves the whole page as dir/name (PNG).
func Screenshot(dir, name string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		png, err := chromedp.FullScreenshot(100)(ctx, t)
		if err != nil {
			return chromedp.Void{}, fmt.Errorf("screenshot %s: %w", name, err)
		}
		return chromedp.Void{}, os.WriteFile(filepath.Join(dir, name), png, 0o644)
	}
}

// RunScenario is the acceptance walk: grid → running build → live log
// lines → log in → force a build.
func RunScenario(t *testing.T, ctx context.Context, f Farm, dir string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	cell := chromedp.CSS(fmt.Sprintf(`#grid a[href="/builds/%d"]`, f.RunningBuild))
	err := chromedp.Do(ctx,
		chromedp.Navigate(f.URL+"/"),
		chromedp.WaitVisible(cell),
		Screenshot(dir, "grid.png"),
		chromedp.Click(cell),
		chromedp.WaitVisible(chromedp.CSS(`#log .ln`)),
	)
	if err != nil {
		t.Fatalf("grid to running build: %v", err)
	}
	history, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#log .ln').length`))
	if err != nil {
		t.Fatalf("count log lines: %v", err)
	}

	// Lines the farm writes while the page is open must appear without a reload.
	for i := range 3 {
		f.PushLog(fmt.Sprintf("live line %d \x1b[1;32mgreen\x1b[0m <script>document.title='owned'</script>", i))
	}
	err = chromedp.Do(ctx,
		chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			_, err := chromedp.Poll[chromedp.Void](fmt.Sprintf(`document.querySelectorAll('#log .ln').length >= %d`, history+3), chromedp.WithPollingTimeout(10*time.Second))(ctx, t)
			return err
		}),
		Screenshot(dir, "build-live-log.png"),
	)
	if err != nil {
		t.Fatalf("live log lines: %v", err)
	}
	last, err := chromedp.Run(ctx, chromedp.InnerHTML(chromedp.CSS(`#log .ln:last-child`)))
	if err != nil {
		t.Fatal(err)
	}
	title, _ := chromedp.Run(ctx, chromedp.Title())
	url, _ := chromedp.Run(ctx, chromedp.Location())
	if !strings.Contains(last, `live line 2 <span class="ab af-green">green</span>`) {
		t.Errorf("last log line rendered as %q", last)
	}
	if !strings.Contains(last, "&lt;script&gt;") || title == "owned" {
		t.Errorf("log line markup was not escaped: %q (title %q)", last, title)
	}
	if !strings.HasSuffix(url, fmt.Sprintf("/builds/%d", f.RunningBuild)) {
		t.Errorf("grid cell led to %s", url)
	}

	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`#login-link`)),
		chromedp.WaitVisible(chromedp.CSS(`#user-name`)),
		chromedp.SendKeys(chromedp.CSS(`#user-name`), f.User),
		chromedp.SendKeys(chromedp.CSS(`#password`), f.Password),
		chromedp.Click(chromedp.CSS(`#login-submit`)),
		chromedp.WaitVisible(chromedp.CSS(`#user`)),
	)
	if err != nil {
		t.Fatalf("log in: %v", err)
	}
	if who, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#user`))); who != f.User {
		t.Errorf("page says logged in as %q, want %q", who, f.User)
	}
	err = chromedp.Do(ctx,
		chromedp.Navigate(fmt.Sprintf("%s/builds/%d", f.URL, f.RunningBuild)),
		chromedp.WaitVisible(chromedp.CSS(`#force`)),
		chromedp.SendKeys(chromedp.CSS(`#force-revision`), "main"),
		Screenshot(dir, "logged-in-build.png"),
		chromedp.Click(chromedp.CSS(`#force`)),
	)
	if err != nil {
		t.Fatalf("force: %v", err)
	}
	// The click navigates; polling inside the page would die with it, so
	// ask the browser for its location until it is the new build's page.
	from := fmt.Sprintf("/builds/%d", f.RunningBuild)
	for deadline := time.Now().Add(10 * time.Second); ; {
		loc, err := chromedp.Run(ctx, chromedp.Location())
		if err == nil && strings.Contains(loc, "/builds/") && !strings.HasSuffix(loc, from) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("force did not open a new build page; at %q (%v)", loc, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`#build-status`)), Screenshot(dir, "forced-build.png")); err != nil {
		t.Fatalf("new build page: %v", err)
	}
	if !f.Forced() {
		t.Error("the force never reached the farm")
	}
}
