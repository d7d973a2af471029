package repo

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"

	"github.com/kiln-build/kiln/repo/pkgmeta"
	"github.com/kiln-build/kiln/repo/yum"
)

// yumKinds are the repodata files written, in repomd.xml order.
var yumKinds = []struct {
	name   string
	header func(*bytes.Buffer, int)
	footer func(*bytes.Buffer)
	pkg    func(*bytes.Buffer, yum.Entry)
}{
	{"primary", yum.PrimaryHeader, yum.PrimaryFooter, yum.PrimaryPackage},
	{"filelists", yum.FilelistsHeader, yum.FilelistsFooter, yum.FilelistsPackage},
	{"other", yum.OtherHeader, yum.OtherFooter, yum.OtherPackage},
}

// yumRepo writes repodata/ of one target: the three gzip'd XML files named
// by their checksum, repomd.xml and its detached signature. An unchanged
// package list reuses the previous repodata, signature included.
func (b *build) yumRepo(ctx context.Context, tc TargetContents) error {
	var main, debug []*pkgmeta.Package
	for _, p := range tc.Packages {
		if p.IsDebug() {
			debug = append(debug, p)
		} else {
			main = append(main, p)
		}
	}
	if err := b.yumRepodata(ctx, tc.Target.Dir(), tc.Target.Key, main); err != nil {
		return err
	}
	return b.yumRepodata(ctx, path.Join(tc.Target.Dir(), YumDebugDir), tc.Target.Key, debug)
}

// YumDebugDir is the repository, inside a yum target's, of its -debuginfo
// and -debugsource packages, which a client opts into with a second
// .repo entry; it always has repodata, empty or not. Its Packages/ is the
// target's own pool, so package locations read the same in both.
const YumDebugDir = "debug"

// yumRepodata writes dir/repodata for pkgs.
func (b *build) yumRepodata(ctx context.Context, dir, signKey string, pkgs []*pkgmeta.Package) error {
	pkgs = slices.Clone(pkgs)
	sortPackages(pkgs)
	entries := make([]yum.Entry, len(pkgs))
	ids := make([]string, len(pkgs))
	for i, p := range pkgs {
		entries[i] = yum.Entry{Pkg: p, Location: b.loc[p]}
		// The file time is part of primary.xml but not of the checksum.
		ids[i] = fmt.Sprintf("%s %s %d", p.SHA256, entries[i].Location, p.RPM.FileTime)
	}
	key := fingerprint(append([]string{"yum", dir, signKey}, ids...)...)
	files, ok := b.cache.get(b.p.st, key)
	if !ok {
		var chunks []string
		var err error
		if files, chunks, err = b.renderRepodata(ctx, dir, signKey, entries, ids); err != nil {
			return fmt.Errorf("yum %s: %w", dir, err)
		}
		b.cache.put(key, files, chunks)
	}
	if err := b.place(files); err != nil {
		return err
	}
	return b.carryRepodata(dir)
}

// carryRepodata keeps the data files the served repomd.xml lists in the new
// version, so a client that fetched the old repomd.xml just before the
// switch still finds them. Only one version back is kept.
func (b *build) carryRepodata(dir string) error {
	if b.prev == "" {
		return nil
	}
	old := filepath.Join(b.prev, filepath.FromSlash(dir))
	data, err := os.ReadFile(filepath.Join(old, "repodata", "repomd.xml"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("carry repodata of %s: %w", dir, err)
	}
	var md struct {
		Data []struct {
			Location struct {
				Href string `xml:"href,attr"`
			} `xml:"location"`
		} `xml:"data"`
	}
	if err := xml.Unmarshal(data, &md); err != nil {
		return fmt.Errorf("carry repodata of %s: %w", dir, err)
	}
	for _, d := range md.Data {
		href := path.Clean(d.Location.Href)
		if path.Dir(href) != "repodata" || pkgmeta.CheckFileName(path.Base(href)) != nil {
			continue // not something this publisher wrote
		}
		b.t.carry(path.Join(dir, href), filepath.Join(old, filepath.FromSlash(href)))
	}
	return nil
}

func (b *build) renderRepodata(ctx context.Context, dir, signKey string, entries []yum.Entry, ids []string) ([]cachedFile, []string, error) {
	records := make([]yum.Record, len(yumKinds))
	files := make([]cachedFile, len(yumKinds), len(yumKinds)+2)
	keys := make([][]string, len(yumKinds))
	err := parallel(len(yumKinds), func(i int) error {
		k := yumKinds[i]
		var header, footer bytes.Buffer
		k.header(&header, len(entries))
		k.footer(&footer)
		r, err := b.renderChunked(chunkSpec{
			kind:   k.name,
			n:      len(entries),
			name:   func(i int) string { return entries[i].Pkg.Name },
			id:     func(i int) string { return ids[i] },
			render: func(buf *bytes.Buffer, i int) { k.pkg(buf, entries[i]) },
		}, header.Bytes(), footer.Bytes())
		if err != nil {
			return err
		}
		keys[i] = r.keys
		sum := sumHex(r.gz)
		loc := path.Join("repodata", sum+"-"+k.name+".xml.gz")
		f, err := b.index(path.Join(dir, loc), r.gz)
		if err != nil {
			return err
		}
		files[i] = f
		records[i] = yum.Record{Type: k.name, Location: loc, SHA256: sum, Size: int64(len(r.gz)),
			OpenSHA256: r.sum, OpenSize: r.size, Timestamp: b.now.Unix()}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	var chunks []string
	for _, k := range keys {
		chunks = append(chunks, k...)
	}
	repomd := yum.Repomd(b.now.Unix(), records)
	sig, err := b.sign(ctx, signKey, repomd, false)
	if err != nil {
		return nil, nil, err
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{"repomd.xml", repomd}, {"repomd.xml.asc", sig}} {
		cf, err := b.index(path.Join(dir, "repodata", f.name), f.data)
		if err != nil {
			return nil, nil, err
		}
		files = append(files, cf)
	}
	return files, chunks, nil
}
