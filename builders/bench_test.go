package builders

import "testing"

// BenchmarkLoadFarmLarge measures what a master does on (re)load and what
// `kiln checkconfig` does: read, decode, validate and expand the seed-size
// farm. Figures are in docs/benchmarks.md.
func BenchmarkLoadFarmLarge(b *testing.B) {
	b.ReportAllocs()
	var m *Matrix
	for b.Loop() {
		var err error
		if _, m, err = LoadMatrix("../configs/farm-large.yaml"); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(m.Builders)), "builders")
}
