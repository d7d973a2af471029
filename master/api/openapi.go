package api

import (
	_ "embed"
	"net/http"
)

// openAPI describes every route Register adds; TestOpenAPIMatchesRoutes
// holds the two together.
//
//go:embed openapi.json
var openAPI []byte

// OpenAPI returns the embedded OpenAPI 3 document.
func OpenAPI() []byte { return openAPI }

func serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	if !onlyParams(w, r) {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(openAPI)
}
