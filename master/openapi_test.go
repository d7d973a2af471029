package master_test

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	gotoken "go/token"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/internal/kilntest"
	"github.com/kiln-build/kiln/master/api"
)

// apiPattern is a route pattern under /api/v1 as Go code spells it.
var apiPattern = regexp.MustCompile(`^(GET|POST|PUT|PATCH|DELETE) /api/v1/\S*$`)

// masterAPIRoutes returns every /api/v1 route pattern the master's code
// registers: api.Register's, and any the master package adds to the mux
// itself (found in its source, since a ServeMux cannot list its routes).
func masterAPIRoutes(t *testing.T, f *farm) []string {
	routes := api.Register(http.NewServeMux(), f.api(), nil, kilntest.QuietLogger())
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := gotoken.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == gotoken.STRING {
				if s, err := strconv.Unquote(lit.Value); err == nil && apiPattern.MatchString(s) && !slices.Contains(routes, s) {
					routes = append(routes, s)
				}
			}
			return true
		})
	}
	return routes
}

// TestOpenAPICoversTheMastersRoutes holds openapi.json to the real master's
// mux: every /api/v1 route is documented with its method, and every
// documented path and method reaches a route of its own on the master (not
// the API's catch-all 404, not the pages).
func TestOpenAPICoversTheMastersRoutes(t *testing.T) {
	f := newFarm(t, farmOpts{})
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(api.OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	routes := masterAPIRoutes(t, f)
	for _, r := range routes {
		method, path, _ := strings.Cut(r, " ")
		path = strings.ReplaceAll(strings.TrimPrefix(path, "/api/v1"), "...}", "}")
		if _, ok := doc.Paths[path][strings.ToLower(method)]; !ok {
			t.Errorf("route %s is not in openapi.json", r)
		}
	}
	for path, ops := range doc.Paths {
		for method := range ops {
			req := httptest.NewRequest(strings.ToUpper(method), "/api/v1"+strings.NewReplacer("{id}", "7", "{name}", "x.deb").Replace(path), nil)
			_, pattern := f.m().Mux().Handler(req)
			if !slices.Contains(routes, pattern) {
				t.Errorf("openapi.json documents %s %s, which the master serves with %q", method, path, pattern)
			}
		}
	}
}
