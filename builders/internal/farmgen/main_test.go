package main

import (
	"bytes"
	"os"
	"testing"
)

// The committed farm must be exactly what this program writes, so the two
// cannot drift apart.
func TestFarmLargeIsGenerated(t *testing.T) {
	want, err := os.ReadFile("../../../configs/farm-large.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	generate(&got)
	if !bytes.Equal(got.Bytes(), want) {
		t.Error("configs/farm-large.yaml is stale: go run ./builders/internal/farmgen > configs/farm-large.yaml")
	}
}
