package steps

import (
	"errors"
	"slices"
	"testing"

	"github.com/kiln-build/kiln/protocol"
)

// TestRegistryImplementsStepTypes holds the registry to protocol.StepTypes,
// the list builders validates configs against: a type there but not here
// would pass `kiln checkconfig` and then fail every build on the worker, and
// a type here but not there could never be configured.
func TestRegistryImplementsStepTypes(t *testing.T) {
	if got := Types(); !slices.Equal(got, protocol.StepTypes) {
		t.Fatalf("registry has %v, protocol.StepTypes is %v", got, protocol.StepTypes)
	}
}

func TestLookup(t *testing.T) {
	tests := []struct {
		typ     string
		unknown bool
	}{
		{"shell", false},
		{"sign", true}, // signing happens on the master at publish
		{"Shell", true},
		{"", true},
	}
	for _, tt := range tests {
		s, err := Lookup(tt.typ)
		if tt.unknown != errors.Is(err, ErrUnknownStep) || (err == nil) != (s != nil) {
			t.Errorf("Lookup(%q) = %v, %v; want unknown %v", tt.typ, s, err, tt.unknown)
		}
	}
}
