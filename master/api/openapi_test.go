package api_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/master/api"
)

// TestOpenAPIMatchesRoutes: every route Register adds is documented with its
// method, and answers through its own handler (not the catch-all 404, not
// 405). The master's TestOpenAPICoversTheMastersRoutes checks the other
// direction on the real mux.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Servers []struct{ URL string }                `json:"servers"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(api.OpenAPI(), &doc); err != nil {
		t.Fatalf("openapi.json does not parse: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") || len(doc.Servers) != 1 || doc.Servers[0].URL != "/api/v1" {
		t.Fatalf("openapi %q servers %v: want OpenAPI 3 under /api/v1", doc.OpenAPI, doc.Servers)
	}
	mux := http.NewServeMux()
	be := &backend{builds: map[int64]*api.Build{7: {ID: 7}}}
	routes := api.Register(mux, be, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if len(routes) == 0 {
		t.Fatal("Register reported no routes")
	}

	var served []string
	for _, r := range routes {
		method, path, _ := strings.Cut(r, " ")
		path, ok := strings.CutPrefix(path, "/api/v1")
		if !ok {
			t.Errorf("route %q is outside /api/v1", r)
			continue
		}
		path = strings.ReplaceAll(path, "...}", "}")
		op := strings.ToLower(method) + " " + path
		served = append(served, op)
		if _, ok := doc.Paths[path][strings.ToLower(method)]; !ok {
			t.Errorf("route %s is not in openapi.json (as %s)", r, op)
		}
	}

	srv := httptest.NewServer(mux)
	defer srv.Close()
	for path, ops := range doc.Paths {
		for method := range ops {
			if method == "parameters" {
				continue
			}
			op := method + " " + path
			if !slices.Contains(served, op) {
				// A route the master adds to the mux itself; the master's
				// TestOpenAPICoversTheMastersRoutes checks those.
				continue
			}
			url := srv.URL + "/api/v1" + strings.NewReplacer("{id}", "7", "{name}", "x.deb").Replace(path)
			req, _ := http.NewRequest(strings.ToUpper(method), url, strings.NewReader(`{"component":"x"}`))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusMethodNotAllowed || strings.Contains(string(body), "no API route") {
				t.Errorf("%s: HTTP %d %s", op, resp.StatusCode, body)
			}
		}
	}
}

func TestOpenAPIIsServed(t *testing.T) {
	srv := serve(&backend{}, nil)
	defer srv.Close()
	code, body := do(t, srv, "GET", "/api/v1/openapi.json", "")
	if code != http.StatusOK || body != string(api.OpenAPI()) {
		t.Errorf("GET /api/v1/openapi.json: HTTP %d, %d bytes", code, len(body))
	}
}
