package repo_test

import (
	"compress/gzip"
	"encoding/xml"
	"io"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/internal/kilntest"
	"github.com/kiln-build/kiln/internal/pkgclient"
	"github.com/kiln-build/kiln/repo"
	"github.com/kiln-build/kiln/repo/internal/repotest"
	"github.com/kiln-build/kiln/repo/pkgmeta"
)

// The structures below hold every primary.xml field dnf (libsolv's repo_rpmmd)
// reads, so comparing them compares what a client sees.
type xEntry struct {
	Name  string `xml:"name,attr"`
	Flags string `xml:"flags,attr"`
	Epoch string `xml:"epoch,attr"`
	Ver   string `xml:"ver,attr"`
	Rel   string `xml:"rel,attr"`
	Pre   string `xml:"pre,attr"`
}

type xFile struct {
	Type string `xml:"type,attr"`
	Path string `xml:",chardata"`
}

type xVersion struct {
	Epoch string `xml:"epoch,attr"`
	Ver   string `xml:"ver,attr"`
	Rel   string `xml:"rel,attr"`
}

type xPackage struct {
	Name     string   `xml:"name"`
	Arch     string   `xml:"arch"`
	Version  xVersion `xml:"version"`
	Checksum struct {
		Type  string `xml:"type,attr"`
		Value string `xml:",chardata"`
	} `xml:"checksum"`
	Summary     string `xml:"summary"`
	Description string `xml:"description"`
	Packager    string `xml:"packager"`
	URL         string `xml:"url"`
	Time        struct {
		File  string `xml:"file,attr"`
		Build string `xml:"build,attr"`
	} `xml:"time"`
	Size struct {
		Package   string `xml:"package,attr"`
		Installed string `xml:"installed,attr"`
		Archive   string `xml:"archive,attr"`
	} `xml:"size"`
	Location struct {
		Href string `xml:"href,attr"`
	} `xml:"location"`
	Format struct {
		License     string `xml:"license"`
		Vendor      string `xml:"vendor"`
		Group       string `xml:"group"`
		Buildhost   string `xml:"buildhost"`
		Sourcerpm   string `xml:"sourcerpm"`
		HeaderRange struct {
			Start string `xml:"start,attr"`
			End   string `xml:"end,attr"`
		} `xml:"header-range"`
		Provides    []xEntry `xml:"provides>entry"`
		Requires    []xEntry `xml:"requires>entry"`
		Conflicts   []xEntry `xml:"conflicts>entry"`
		Obsoletes   []xEntry `xml:"obsoletes>entry"`
		Suggests    []xEntry `xml:"suggests>entry"`
		Enhances    []xEntry `xml:"enhances>entry"`
		Recommends  []xEntry `xml:"recommends>entry"`
		Supplements []xEntry `xml:"supplements>entry"`
		Files       []xFile  `xml:"file"`
	} `xml:"format"`
	// filelists.xml and other.xml
	File      []xFile `xml:"file"`
	Changelog []struct {
		Author string `xml:"author,attr"`
		Date   string `xml:"date,attr"`
		Text   string `xml:",chardata"`
	} `xml:"changelog"`
	PkgID string `xml:"pkgid,attr"`
}

type xMetadata struct {
	Count    string     `xml:"packages,attr"`
	Packages []xPackage `xml:"package"`
}

type xRepomd struct {
	Data []struct {
		Type     string `xml:"type,attr"`
		Location struct {
			Href string `xml:"href,attr"`
		} `xml:"location"`
	} `xml:"data"`
}

// readRepodata parses one kind of repodata of a repository directory,
// normalized: packages by name, lists sorted, locations reduced to base names.
func readRepodata(t *testing.T, dir, kind string) xMetadata {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "repodata", "repomd.xml"))
	if err != nil {
		t.Fatal(err)
	}
	var md xRepomd
	if err := xml.Unmarshal(b, &md); err != nil {
		t.Fatal(err)
	}
	for _, d := range md.Data {
		if d.Type != kind {
			continue
		}
		f, err := os.Open(filepath.Join(dir, d.Location.Href))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		z, err := gzip.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := io.ReadAll(z)
		if err != nil {
			t.Fatal(err)
		}
		var m xMetadata
		if err := xml.Unmarshal(raw, &m); err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		for i := range m.Packages {
			p := &m.Packages[i]
			p.Location.Href = path.Base(p.Location.Href)
			for _, l := range [][]xEntry{p.Format.Provides, p.Format.Requires, p.Format.Conflicts, p.Format.Obsoletes,
				p.Format.Suggests, p.Format.Enhances, p.Format.Recommends, p.Format.Supplements} {
				sort.Slice(l, func(i, j int) bool { return entryKey(l[i]) < entryKey(l[j]) })
			}
			sort.Slice(p.Format.Files, func(i, j int) bool { return p.Format.Files[i].Path < p.Format.Files[j].Path })
			sort.Slice(p.File, func(i, j int) bool { return p.File[i].Path < p.File[j].Path })
		}
		sort.Slice(m.Packages, func(i, j int) bool { return m.Packages[i].Name < m.Packages[j].Name })
		return m
	}
	t.Fatalf("%s: no %s in repomd.xml", dir, kind)
	return xMetadata{}
}

func entryKey(e xEntry) string {
	return strings.Join([]string{e.Name, e.Flags, e.Epoch, e.Ver, e.Rel, e.Pre}, "\x00")
}

func TestRepodataMatchesCreaterepo(t *testing.T) {
	kilntest.NeedTool(t, "createrepo_c", "rpmbuild")
	work := t.TempDir()
	spec, err := os.ReadFile("testdata/complex.spec")
	if err != nil {
		t.Fatal(err)
	}
	rpms := filepath.Join(work, "rpms")
	if err := os.Mkdir(rpms, 0o755); err != nil {
		t.Fatal(err)
	}
	signer := kilntest.Signer(t)
	paths := []string{
		repotest.BuildSpec(t, rpms, string(spec)),
		repotest.BuildRPM(t, rpms, repotest.RPM{Name: "libgrace", Version: "1.2", Release: "3", Arch: "x86_64",
			Provides: []string{"libgrace.so.1()(64bit)"}, Requires: []string{"glibc >= 2.34", "/bin/sh"},
			Files: map[string]string{"/usr/lib64/libgrace.so.1": "elf", "/usr/sbin/graced": "#!/bin/sh\n"}, Sign: signer.RPMSign}),
		repotest.BuildRPM(t, rpms, repotest.RPM{Name: "gracefire", Version: "0.1~rc1", Release: "1", Epoch: 1,
			Obsoletes: []string{"oldfire < 0.1"}, Conflicts: []string{"firewall"}}),
	}
	var pkgs []*pkgmeta.Package
	for _, p := range paths {
		pkgs = append(pkgs, read(t, p))
	}
	root := filepath.Join(work, "repos")
	pub := openPublisher(t, root, signer)
	publish(t, pub, "dev", repo.TargetContents{Target: centos9, Packages: pkgs})
	ours := filepath.Join(root, "dev/current", centos9.Dir())

	if out, err := pkgclient.Run(work, nil, "createrepo_c", "--no-database", rpms); err != nil {
		t.Fatalf("createrepo_c: %v\n%s", err, out)
	}
	for _, kind := range []string{"primary", "filelists", "other"} {
		t.Run(kind, func(t *testing.T) {
			want, got := readRepodata(t, rpms, kind), readRepodata(t, ours, kind)
			if want.Count != got.Count || len(want.Packages) != len(got.Packages) {
				t.Fatalf("package count: createrepo_c %s, ours %s", want.Count, got.Count)
			}
			for i := range want.Packages {
				w, g := want.Packages[i], got.Packages[i]
				wv, gv := reflect.ValueOf(w), reflect.ValueOf(g)
				for f := 0; f < wv.NumField(); f++ {
					if !reflect.DeepEqual(wv.Field(f).Interface(), gv.Field(f).Interface()) {
						t.Errorf("%s %s.%s:\ncreaterepo_c %+v\nours         %+v", kind, w.Name, wv.Type().Field(f).Name, wv.Field(f).Interface(), gv.Field(f).Interface())
					}
				}
			}
		})
	}
}

// paragraphs parses a Packages file into field maps keyed by package file.
func paragraphs(t *testing.T, text string) map[string]map[string]string {
	t.Helper()
	out := map[string]map[string]string{}
	for _, para := range strings.Split(strings.TrimSpace(text), "\n\n") {
		fields, err := pkgmeta.ParseControl([]byte(para))
		if err != nil {
			t.Fatalf("%v in\n%s", err, para)
		}
		m := map[string]string{}
		for _, f := range fields {
			m[f.Name] = f.Value
		}
		out[m["Filename"]] = m
	}
	return out
}

func TestPackagesMatchesAptFtparchive(t *testing.T) {
	kilntest.NeedTool(t, "apt-ftparchive", "dpkg-deb")
	work := t.TempDir()
	root := filepath.Join(work, "repos")
	pub := openPublisher(t, root, kilntest.Signer(t))
	debs := []*pkgmeta.Package{
		read(t, repotest.BuildDeb(t, work, repotest.Deb{Name: "libgrace1", Source: "libgrace", Version: "1:1.2-3", Arch: "amd64", Depends: "libc6 (>= 2.36)", Compression: "gzip"})),
		read(t, repotest.BuildDeb(t, work, repotest.Deb{Name: "grace-doc", Source: "libgrace (1.2-3)", Version: "1.2-3", Arch: "all", Compression: "xz"})),
		read(t, repotest.BuildDeb(t, work, repotest.Deb{Name: "opencore", Version: "2.0~rc1-1", Arch: "amd64", Depends: "libgrace1 (>= 1:1.2), grace-doc", Compression: "zstd"})),
	}
	publish(t, pub, "dev", repo.TargetContents{Target: bookwormAmd64, Packages: debs})
	archive := filepath.Join(root, "dev/current/apt/debian")
	ours, err := os.ReadFile(filepath.Join(archive, "dists/bookworm/main/binary-amd64/Packages"))
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := pkgclient.Run(archive, nil, "apt-ftparchive", "packages", "pool")
	if err != nil {
		t.Fatalf("apt-ftparchive: %v\n%s", err, theirs)
	}
	want, got := paragraphs(t, theirs), paragraphs(t, string(ours))
	if len(want) != len(debs) || len(got) != len(debs) {
		t.Fatalf("paragraphs: apt-ftparchive %d, ours %d, packages %d", len(want), len(got), len(debs))
	}
	// We list only SHA256 (and MD5sum for old tools); apt-ftparchive adds
	// more hashes and a Description-md5 that apt does not need.
	notOurs := map[string]bool{"SHA1": true, "SHA512": true, "Description-md5": true}
	for file, w := range want {
		g, ok := got[file]
		if !ok {
			t.Errorf("%s missing from our Packages", file)
			continue
		}
		for k, v := range w {
			if notOurs[k] {
				continue
			}
			if g[k] != v {
				t.Errorf("%s %s: apt-ftparchive %q, ours %q", file, k, v, g[k])
			}
		}
		for k := range g {
			if _, ok := w[k]; !ok {
				t.Errorf("%s: field %s only in ours", file, k)
			}
		}
	}
}
