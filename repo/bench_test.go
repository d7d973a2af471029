package repo_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/kiln-build/kiln/internal/kilntest"
	"github.com/kiln-build/kiln/repo"
	"github.com/kiln-build/kiln/repo/internal/repotest"
	"github.com/kiln-build/kiln/repo/pkgmeta"
)

// genPackages makes n small real package files of one format in dir.
func genPackages(b *testing.B, dir string, format pkgmeta.Format, n int) []string {
	b.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	paths := make([]string, n)
	for i := range n {
		name := fmt.Sprintf("pkg%05d", i)
		if format == pkgmeta.Deb {
			paths[i] = repotest.GenDeb(b, dir, name, "1.0-1", "amd64")
		} else {
			paths[i] = repotest.BuildRPM(b, dir, repotest.RPM{Name: name, Version: "1.0", Release: "1", Arch: "x86_64"})
		}
	}
	return paths
}

func readAll(b *testing.B, paths []string) []*pkgmeta.Package {
	b.Helper()
	pkgs := make([]*pkgmeta.Package, len(paths))
	for i, p := range paths {
		pkgs[i] = read(b, p)
	}
	return pkgs
}

func timeCmd(b *testing.B, dir string, name string, args ...string) time.Duration {
	b.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("%s: %v\n%s", name, err, out)
	}
	return time.Since(start)
}

func quietPublisher(b *testing.B, root string) *repo.Publisher {
	b.Helper()
	p, err := repo.Open(root, kilntest.Signer(b), repo.Options{KeepVersions: 2, Logger: benchLogger()})
	if err != nil {
		b.Fatal(err)
	}
	return p
}

// BenchmarkFullIndex2000 publishes a full index of 2,000 small packages
// with a cold cache (a new Publisher each time, as after a restart, so
// every index chunk is rendered and compressed again) and
// times the reference tool on the same files in the same iteration.
// Metrics: kiln-ms (publish from metadata read at upload), kiln+read-ms
// (reading all 2,000 files too, what the tools do), tool-ms, and the ratios
// tool/kiln (above 1: Kiln is faster).
func BenchmarkFullIndex2000(b *testing.B) {
	for _, tc := range []struct {
		format pkgmeta.Format
		target repo.Target
		tool   string
		args   func(dir string) []string
	}{
		{pkgmeta.Deb, bookwormAmd64, "apt-ftparchive", func(string) []string { return []string{"packages", "."} }},
		{pkgmeta.RPM, centos9, "createrepo_c", func(dir string) []string {
			return []string{"--workers", "2", "--no-database", "--quiet", dir}
		}},
	} {
		b.Run(string(tc.format), func(b *testing.B) {
			kilntest.NeedTool(b, tc.tool)
			work := b.TempDir()
			files := filepath.Join(work, "files")
			paths := genPackages(b, files, tc.format, 2000)
			pkgs := readAll(b, paths)
			root := filepath.Join(work, "repos")
			// The files are already in the store and pool after upload and
			// the first publish; what is timed is building the full index.
			if _, err := quietPublisher(b, root).Publish(context.Background(), "dev", repo.ChannelContents{Targets: []repo.TargetContents{{Target: tc.target, Packages: pkgs}}}); err != nil {
				b.Fatal(err)
			}
			var kiln, kilnRead, tool time.Duration
			b.ResetTimer()
			for b.Loop() {
				start := time.Now()
				pub := quietPublisher(b, root)
				if _, err := pub.Publish(context.Background(), "dev", repo.ChannelContents{Targets: []repo.TargetContents{{Target: tc.target, Packages: pkgs}}}); err != nil {
					b.Fatal(err)
				}
				kiln += time.Since(start)

				start = time.Now()
				fresh := readAll(b, paths)
				pub = quietPublisher(b, root)
				if _, err := pub.Publish(context.Background(), "dev", repo.ChannelContents{Targets: []repo.TargetContents{{Target: tc.target, Packages: fresh}}}); err != nil {
					b.Fatal(err)
				}
				kilnRead += time.Since(start)

				tool += timeCmd(b, files, tc.tool, tc.args(files)...)
			}
			n := float64(b.N)
			b.ReportMetric(float64(kiln.Milliseconds())/n, "kiln-ms")
			b.ReportMetric(float64(kilnRead.Milliseconds())/n, "kiln+read-ms")
			b.ReportMetric(float64(tool.Milliseconds())/n, tc.tool+"-ms")
			b.ReportMetric(float64(tool)/float64(kiln), "ratio-vs-kiln")
			b.ReportMetric(float64(tool)/float64(kilnRead), "ratio-vs-kiln+read")
		})
	}
}

// BenchmarkAddOneTo10000 measures the common case: one new package in a
// channel target that already holds 10,000, published end to end (store,
// indexes, signatures, sync, switch, prune). Goal: under 100 ms.
func BenchmarkAddOneTo10000(b *testing.B) {
	for _, tc := range []struct {
		format pkgmeta.Format
		target repo.Target
	}{{pkgmeta.Deb, bookwormAmd64}, {pkgmeta.RPM, centos9}} {
		b.Run(string(tc.format), func(b *testing.B) {
			work := b.TempDir()
			pkgs := readAll(b, genPackages(b, filepath.Join(work, "files"), tc.format, 10000))
			pub := quietPublisher(b, filepath.Join(work, "repos"))
			publishList := func(list []*pkgmeta.Package) {
				if _, err := pub.Publish(context.Background(), "dev", repo.ChannelContents{Targets: []repo.TargetContents{{Target: tc.target, Packages: list}}}); err != nil {
					b.Fatal(err)
				}
			}
			publishList(pkgs)
			extra := filepath.Join(work, "extra")
			if err := os.MkdirAll(extra, 0o755); err != nil {
				b.Fatal(err)
			}
			i := 0
			b.ResetTimer()
			for b.Loop() {
				b.StopTimer()
				name := fmt.Sprintf("new%05d", i)
				i++
				var path string
				if tc.format == pkgmeta.Deb {
					path = repotest.GenDeb(b, extra, name, "1.0-1", "amd64")
				} else {
					path = repotest.BuildRPM(b, extra, repotest.RPM{Name: name, Version: "1.0", Release: "1", Arch: "x86_64"})
				}
				pkgs = append(pkgs, read(b, path))
				b.StartTimer()
				publishList(pkgs)
			}
		})
	}
}
