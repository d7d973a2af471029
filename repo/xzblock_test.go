package repo

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/ulikunitz/xz"
)

func TestXZStreamOfBlocks(t *testing.T) {
	var chunks [][]byte
	var want bytes.Buffer
	for i := range 5 {
		c := bytes.Repeat([]byte(fmt.Sprintf("Package: p%d\nVersion: 1.%d\n\n", i, i)), 100*i+1)
		chunks = append(chunks, c)
		want.Write(c)
	}
	tests := map[string][][]byte{"blocks": chunks, "empty": nil, "one": chunks[:1]}
	for name, cs := range tests {
		t.Run(name, func(t *testing.T) {
			var blocks []xzBlock
			var plain bytes.Buffer
			for _, c := range cs {
				b, err := newXZBlock(c)
				if err != nil {
					t.Fatal(err)
				}
				blocks = append(blocks, b)
				plain.Write(c)
			}
			stream := xzStream(blocks)
			r, err := xz.NewReader(bytes.NewReader(stream))
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(r)
			if err != nil || !bytes.Equal(got, plain.Bytes()) {
				t.Fatalf("Go xz reader: %v, %d bytes, want %d", err, len(got), plain.Len())
			}
			// xz(1) and apt's own decompressor are the readers that matter.
			for _, tool := range [][]string{{"xz", "-dc"}, {"/usr/lib/apt/apt-helper", "cat-file"}} {
				if _, err := exec.LookPath(tool[0]); err != nil {
					continue
				}
				f := filepath.Join(t.TempDir(), "Packages.xz")
				if err := os.WriteFile(f, stream, 0o644); err != nil {
					t.Fatal(err)
				}
				out, err := exec.Command(tool[0], append(tool[1:], f)...).Output()
				if err != nil || !bytes.Equal(out, plain.Bytes()) {
					t.Errorf("%s: %v, %d bytes, want %d", tool[0], err, len(out), plain.Len())
				}
			}
		})
	}
}
