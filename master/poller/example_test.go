package poller_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"

	"github.com/kiln-build/kiln/master/hooks"
	"github.com/kiln-build/kiln/master/poller"
)

// Example shows how the master wires change intake: one sink for both
// sources, the webhook handler telling the poller what it reported.
func Example() {
	components := []hooks.Component{
		{Name: "legacy", Repo: "https://git.example.net/farm/legacy.git", Branches: []string{"master"}},
	}
	sink := func(_ context.Context, c hooks.Change) error {
		fmt.Printf("change %s %s@%s from %s\n", c.Component, c.Revision[:7], c.Branch, c.Source.Kind)
		return nil // the master records c in its replicated state here
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))

	p, err := poller.New(poller.Options{Sink: sink, Logger: logger})
	if err != nil {
		panic(err)
	}
	repos, err := poller.Group(components)
	if err != nil {
		panic(err)
	}
	if err := p.Update(repos); err != nil {
		panic(err)
	}
	h, err := hooks.New(hooks.Options{
		Config:     hooks.Config{Generic: hooks.ProviderConfig{Secret: "s3cret"}},
		Components: components,
		Sink:       sink,
		Notify:     p.Notify,
		Logger:     logger,
	})
	if err != nil {
		panic(err)
	}
	// The master mounts h at /hooks/ and runs p.Run(ctx) while it leads.

	body := []byte(`{"repository":"git@git.example.net:farm/legacy","ref":"refs/heads/master","after":"0123456789abcdef0123456789abcdef01234567"}`)
	mac := hmac.New(sha256.New, []byte("s3cret"))
	mac.Write(body)
	r := httptest.NewRequest("POST", "/hooks/generic", bytes.NewReader(body))
	r.Header.Set("X-Kiln-Signature", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	fmt.Print(w.Code, " ", w.Body)
	// Output:
	// change legacy 0123456@master from webhook
	// 200 accepted: 1 change(s): legacy@master
}
