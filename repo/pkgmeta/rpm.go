package pkgmeta

import (
	"bufio"
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/cavaliergopher/rpm"
)

// RPMInfo is what primary.xml, filelists.xml and other.xml need from an rpm header.
type RPMInfo struct {
	Summary       string `json:"summary"`
	Description   string `json:"description"`
	URL           string `json:"url,omitempty"`
	License       string `json:"license,omitempty"`
	Vendor        string `json:"vendor,omitempty"`
	Group         string `json:"group,omitempty"`
	BuildHost     string `json:"buildhost,omitempty"`
	Packager      string `json:"packager,omitempty"`
	SourceRPM     string `json:"sourcerpm,omitempty"`
	BuildTime     int64  `json:"buildtime"`
	FileTime      int64  `json:"filetime"` // mtime of the file when it was read
	InstalledSize int64  `json:"installed_size"`
	ArchiveSize   int64  `json:"archive_size"`
	HeaderStart   int64  `json:"header_start"`
	HeaderEnd     int64  `json:"header_end"`

	Provides    []Dep `json:"provides,omitempty"`
	Requires    []Dep `json:"requires,omitempty"`
	Conflicts   []Dep `json:"conflicts,omitempty"`
	Obsoletes   []Dep `json:"obsoletes,omitempty"`
	Recommends  []Dep `json:"recommends,omitempty"`
	Suggests    []Dep `json:"suggests,omitempty"`
	Supplements []Dep `json:"supplements,omitempty"`
	Enhances    []Dep `json:"enhances,omitempty"`

	Files     []File      `json:"files,omitempty"`
	Changelog []Changelog `json:"changelog,omitempty"`
}

// Dep is one rpm dependency as repodata writes it.
type Dep struct {
	Name  string `json:"name"`
	Flags string `json:"flags,omitempty"` // EQ LT LE GT GE, or empty
	Epoch string `json:"epoch,omitempty"`
	Ver   string `json:"ver,omitempty"`
	Rel   string `json:"rel,omitempty"`
	Pre   bool   `json:"pre,omitempty"`
}

// File is one path the package installs; Type is "", "dir" or "ghost".
type File struct {
	Path string `json:"path"`
	Type string `json:"type,omitempty"`
}

// Changelog is one rpm changelog entry.
type Changelog struct {
	Author string `json:"author"`
	Time   int64  `json:"time"`
	Text   string `json:"text"`
}

// ChangelogLimit is how many of the newest changelog entries are kept, as
// createrepo_c does by default.
const ChangelogLimit = 10

// Header and signature tags used below (rpmtag.h).
const (
	tagSigSize      = 1000
	tagSigMD5       = 1004
	tagSigSHA256    = 273
	tagSigLongArch  = 271
	tagSigPayload   = 1007
	tagName         = 1000
	tagVersion      = 1001
	tagRelease      = 1002
	tagEpoch        = 1003
	tagSummary      = 1004
	tagDescription  = 1005
	tagBuildTime    = 1006
	tagBuildHost    = 1007
	tagSize         = 1009
	tagVendor       = 1011
	tagLicense      = 1014
	tagPackager     = 1015
	tagGroup        = 1016
	tagURL          = 1020
	tagArch         = 1022
	tagFileModes    = 1030
	tagFileFlags    = 1037
	tagSourceRPM    = 1044
	tagArchiveSize  = 1046
	tagChangeTime   = 1080
	tagChangeName   = 1081
	tagChangeText   = 1082
	tagDirIndexes   = 1116
	tagBaseNames    = 1117
	tagDirNames     = 1118
	tagLongSize     = 5009
	tagPayloadDgst  = 5092
	tagPayloadAlgo  = 5093
	tagSourcePkg    = 1106
	fileFlagGhost   = 1 << 6
	hashAlgoSHA256  = 8
	rpmHeaderMagic  = "\x8e\xad\xe8"
	rpmLeadSize     = 96
	maxRPMHeaderLen = 64 << 20
)

// ReadRPM reads an rpm's header and checksums, and verifies the digests the
// rpm carries (header SHA256, header+payload MD5, payload digest) so that a
// damaged file is refused at upload.
func ReadRPM(path string) (*Package, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read rpm: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read rpm: %w", err)
	}
	sums, err := checksum(f)
	if err != nil {
		return nil, fmt.Errorf("read rpm %s: %w", path, err)
	}
	p, err := parseRPM(io.NewSectionReader(f, 0, sums.size))
	if err != nil {
		return nil, fmt.Errorf("read rpm %s: %w", filepath.Base(path), err)
	}
	sums.fill(p)
	p.RPM.FileTime = st.ModTime().Unix()
	p.Path = path
	return p, nil
}

// fullReader turns short reads into full ones: the rpm library reads fixed
// size records with plain Read calls.
type fullReader struct{ r io.Reader }

func (f fullReader) Read(b []byte) (int, error) { return io.ReadFull(f.r, b) }

func parseRPM(r *io.SectionReader) (p *Package, err error) {
	// A corrupt header can hold out-of-range string offsets (which the rpm
	// library indexes without checking) or arrays of mismatched lengths;
	// report those as ErrCorrupt rather than letting a panic escape.
	defer func() {
		if r := recover(); r != nil {
			p, err = nil, fmt.Errorf("%w: malformed header: %v", ErrCorrupt, r)
		}
	}()
	if err := checkRPMHeaders(r); err != nil {
		return nil, err
	}
	hdr, err := rpm.Read(fullReader{bufio.NewReader(io.NewSectionReader(r, 0, r.Size()))})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	start, end := hdr.HeaderRange()
	if start <= rpmLeadSize || end <= start || int64(end) > r.Size() || end-start > maxRPMHeaderLen {
		return nil, fmt.Errorf("%w: header range %d-%d outside the file", ErrCorrupt, start, end)
	}
	if err := verifyRPM(r, hdr, int64(start), int64(end)); err != nil {
		return nil, err
	}
	h := &hdr.Header
	// rpm marks a source rpm so (RPMTAG_SOURCEPACKAGE); its header's arch
	// is the build host's, but repositories list it as src, where dnf
	// download --source looks for it.
	isSource := h.GetTag(tagSourcePkg) != nil
	info := &RPMInfo{
		Summary:       str(h, tagSummary),
		Description:   str(h, tagDescription),
		URL:           str(h, tagURL),
		License:       str(h, tagLicense),
		Vendor:        str(h, tagVendor),
		Group:         str(h, tagGroup),
		BuildHost:     str(h, tagBuildHost),
		Packager:      str(h, tagPackager),
		SourceRPM:     str(h, tagSourceRPM),
		BuildTime:     h.GetTag(tagBuildTime).Int64(),
		InstalledSize: firstInt(h, tagLongSize, tagSize),
		ArchiveSize:   archiveSize(hdr),
		HeaderStart:   int64(start),
		HeaderEnd:     int64(end),
	}
	info.Files = files(h)
	info.Provides = deps(h, 1047, 1112, 1113)
	info.Requires = deps(h, 1049, 1048, 1050)
	info.Conflicts = deps(h, 1054, 1053, 1055)
	info.Obsoletes = deps(h, 1090, 1114, 1115)
	info.Recommends = deps(h, 5046, 5048, 5047)
	info.Suggests = deps(h, 5049, 5051, 5050)
	info.Supplements = deps(h, 5052, 5054, 5053)
	info.Enhances = deps(h, 5055, 5057, 5056)
	info.Changelog = changelog(h)

	p = &Package{
		Format:  RPM,
		Name:    str(h, tagName),
		Epoch:   int(h.GetTag(tagEpoch).Int64()),
		Version: str(h, tagVersion),
		Release: str(h, tagRelease),
		Arch:    str(h, tagArch),
		Source:  info.SourceRPM,
		RPM:     info,
	}
	if err := checkToken("package name", p.Name, "+-._"); err != nil {
		return nil, err
	}
	if err := checkToken("version", p.Version, ".+~^_"); err != nil {
		return nil, err
	}
	if err := checkToken("release", p.Release, ".+~^_"); err != nil {
		return nil, err
	}
	if err := checkToken("architecture", p.Arch, "_"); err != nil {
		return nil, err
	}
	if isSource {
		p.Arch = SourceRPMArch
	}
	p.FileName = fmt.Sprintf("%s-%s-%s.%s.rpm", p.Name, p.Version, p.Release, p.Arch)
	if err := CheckFileName(p.FileName); err != nil {
		return nil, err
	}
	return p, nil
}

// verifyRPM checks the digests rpm itself would check before installing.
func verifyRPM(r *io.SectionReader, hdr *rpm.Package, start, end int64) error {
	magic := make([]byte, 3)
	if _, err := r.ReadAt(magic, start); err != nil || string(magic) != rpmHeaderMagic {
		return fmt.Errorf("%w: no header magic at offset %d", ErrCorrupt, start)
	}
	hSHA, hMD5, hPayload := sha256.New(), md5.New(), sha256.New()
	if _, err := io.Copy(io.MultiWriter(hSHA, hMD5), io.NewSectionReader(r, start, end-start)); err != nil {
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	if _, err := io.Copy(io.MultiWriter(hMD5, hPayload), io.NewSectionReader(r, end, r.Size()-end)); err != nil {
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	sig := &hdr.Signature
	if want := str(sig, tagSigSHA256); want != "" && want != hex.EncodeToString(hSHA.Sum(nil)) {
		return fmt.Errorf("%w: header SHA256 digest mismatch", ErrCorrupt)
	}
	if want := sig.GetTag(tagSigMD5).Bytes(); want != nil && !bytes.Equal(want, hMD5.Sum(nil)) {
		return fmt.Errorf("%w: header+payload MD5 digest mismatch", ErrCorrupt)
	}
	if want := sig.GetTag(tagSigSize).Int64(); want != 0 && want != r.Size()-start {
		return fmt.Errorf("%w: size %d in signature, %d in file", ErrCorrupt, want, r.Size()-start)
	}
	h := &hdr.Header
	if want := str(h, tagPayloadDgst); want != "" && h.GetTag(tagPayloadAlgo).Int64() == hashAlgoSHA256 &&
		want != hex.EncodeToString(hPayload.Sum(nil)) {
		return fmt.Errorf("%w: payload SHA256 digest mismatch", ErrCorrupt)
	}
	return nil
}

func str(h *rpm.Header, tag int) string { return h.GetTag(tag).String() }

func firstInt(h *rpm.Header, tag, fallback int) int64 {
	if t := h.GetTag(tag); t != nil {
		return t.Int64()
	}
	return h.GetTag(fallback).Int64()
}

// archiveSize is the uncompressed payload size, which rpm keeps in the
// signature header (64-bit or 32-bit tag) or, in old packages, the main one.
func archiveSize(p *rpm.Package) int64 {
	for _, t := range []*rpm.Tag{p.Signature.GetTag(tagSigLongArch), p.Signature.GetTag(tagSigPayload), p.Header.GetTag(tagArchiveSize), p.Header.GetTag(tagSigLongArch)} {
		if v := t.Int64(); v != 0 {
			return v
		}
	}
	return 0
}

func files(h *rpm.Header) []File {
	idx := h.GetTag(tagDirIndexes).Int64Slice()
	base := h.GetTag(tagBaseNames).StringSlice()
	dirs := h.GetTag(tagDirNames).StringSlice()
	modes := h.GetTag(tagFileModes).Int64Slice()
	flags := h.GetTag(tagFileFlags).Int64Slice()
	out := make([]File, len(base))
	for i, b := range base {
		f := File{Path: dirs[idx[i]] + b}
		switch {
		case flags[i]&fileFlagGhost != 0:
			f.Type = "ghost"
		case modes[i]&0o170000 == 0o040000:
			f.Type = "dir"
		}
		out[i] = f
	}
	return out
}

// deps decodes one dependency kind. Flags keep the comparison (EQ/LT/...)
// and the "pre" bit, which createrepo_c sets for install-time prerequisites.
func deps(h *rpm.Header, nameTag, flagsTag, verTag int) []Dep {
	names := h.GetTag(nameTag).StringSlice()
	flags := h.GetTag(flagsTag).Int64Slice()
	vers := h.GetTag(verTag).StringSlice()
	out := make([]Dep, 0, len(names))
	for i, n := range names {
		d := Dep{Name: n, Flags: senseName(flags[i])}
		if vers[i] != "" {
			d.Epoch, d.Ver, d.Rel = splitEVR(vers[i])
		}
		const preMask = 1<<6 | 1<<9 | 1<<10 // PREREQ, SCRIPT_PRE, SCRIPT_POST
		d.Pre = flags[i]&preMask != 0
		out = append(out, d)
	}
	return out
}

func senseName(f int64) string {
	switch f & 0xe {
	case 2:
		return "LT"
	case 4:
		return "GT"
	case 8:
		return "EQ"
	case 10:
		return "LE"
	case 12:
		return "GE"
	}
	return ""
}

// splitEVR splits "[epoch:]version[-release]"; the epoch defaults to "0"
// as createrepo_c writes it.
func splitEVR(s string) (epoch, ver, rel string) {
	epoch = "0"
	if i := strings.IndexByte(s, ':'); i >= 0 {
		epoch, s = s[:i], s[i+1:]
	}
	ver = s
	if i := strings.LastIndexByte(s, '-'); i >= 0 {
		ver, rel = s[:i], s[i+1:]
	}
	return epoch, ver, rel
}

func changelog(h *rpm.Header) []Changelog {
	times := h.GetTag(tagChangeTime).Int64Slice()
	names := h.GetTag(tagChangeName).StringSlice()
	texts := h.GetTag(tagChangeText).StringSlice()
	n := min(len(times), ChangelogLimit)
	out := make([]Changelog, n)
	for i := range n {
		out[i] = Changelog{Author: names[i], Time: times[i], Text: texts[i]}
	}
	return out
}
