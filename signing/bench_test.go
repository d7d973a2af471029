package signing

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"syscall"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
)

// benchData is the size of a typical rpm header or Release file.
var benchData = bytes.Repeat([]byte("kiln benchmark "), 4096/15)

// meter reports wall-clock throughput and, because this machine kind is
// often shared, CPU time per signature (user+system of the whole process:
// agent and client), which contention inflates far less.
type meter struct{ cpu0 time.Duration }

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func startMeter(b *testing.B) meter {
	b.ResetTimer()
	return meter{cpu0: cpuTime()}
}

func (m meter) report(b *testing.B, sigs int) {
	b.ReportMetric(float64(sigs)/b.Elapsed().Seconds(), "sigs/s")
	b.ReportMetric(float64((cpuTime()-m.cpu0).Microseconds())/float64(sigs), "cpu-µs/sig")
}

// BenchmarkRawGoCrypto is the baseline: go-crypto signing in-process, one
// goroutine, no agent.
func BenchmarkRawGoCrypto(b *testing.B) {
	for _, typ := range keyTypes {
		b.Run(string(typ), func(b *testing.B) {
			tk := keyFor(b, typ)
			el, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(tk.gen.Secret))
			if err != nil {
				b.Fatal(err)
			}
			if err := el[0].DecryptPrivateKeys([]byte(testPassphrase)); err != nil {
				b.Fatal(err)
			}
			m := startMeter(b)
			for b.Loop() {
				if err := openpgp.DetachSign(io.Discard, el[0], bytes.NewReader(benchData), sigConfig); err != nil {
					b.Fatal(err)
				}
			}
			m.report(b, b.N)
		})
	}
}

// BenchmarkAgentSocket measures signatures through the agent over its Unix
// socket: one per round trip, and batches of 100.
func BenchmarkAgentSocket(b *testing.B) {
	for _, typ := range keyTypes {
		for _, batch := range []int{1, 100} {
			b.Run(fmt.Sprintf("%s/batch=%d", typ, batch), func(b *testing.B) {
				a, _, _ := newTestAgent(b, Options{}, typ)
				a.audit = NewAuditLog(io.Discard)
				c, _ := serveSocket(b, a, nil)
				reqs := make([]Request, batch)
				for i := range reqs {
					reqs[i] = Request{Key: string(typ), Kind: KindBinary, Name: fmt.Sprintf("item-%d", i), Data: benchData}
				}
				ctx := context.Background()
				m := startMeter(b)
				for b.Loop() {
					if _, err := c.Sign(ctx, reqs); err != nil {
						b.Fatal(err)
					}
				}
				m.report(b, b.N*batch)
			})
		}
	}
}
