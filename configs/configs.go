// Package configs embeds the example configurations and the demo farm's
// component sources, so `kiln demo` works from the binary alone.
package configs

import "embed"

// Demo holds demo.yaml and, under demo/, one directory per demo component.
//
//go:embed demo.yaml demo
var Demo embed.FS
