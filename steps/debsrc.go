package steps

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// ErrMissingOrig is a source package whose upstream (orig) tarball is not
// where the tool reading it looks: next to the .dsc.
var ErrMissingOrig = errors.New("missing orig tarball")

// origHint says where the source step gets an orig tarball (origSource);
// it follows the file's name in summaries.
const origHint = "the source step takes it from the pristine-tar branch, else the upstream tag (with: upstream_tag), " +
	"else the dev channel, else with: orig or orig_url, else makes it from the tree"

// reOrigFile matches the name of an upstream tarball or its signature:
// NAME_UPSTREAM.orig.tar.EXT, NAME_UPSTREAM.orig-COMPONENT.tar.EXT, and
// either with .asc appended (dpkg-source(1), source format 3.0 (quilt)).
var reOrigFile = regexp.MustCompile(`\.orig(?:-[A-Za-z0-9][A-Za-z0-9-]*)?\.tar(?:\.[A-Za-z0-9]+)*$`)

func isOrig(name string) bool { return reOrigFile.MatchString(name) }

// listedFile is one entry of the Files field of a .changes or .dsc, with
// its SHA-256 from Checksums-Sha256 when the file gives one.
type listedFile struct {
	Name   string
	SHA256 string
}

// listedFiles reads the Files field of a .changes or .dsc (deb822, maybe
// clearsigned: the signature ends the fields). The name is each line's
// last word (a .changes adds section and priority before it, a .dsc does
// not). Names are bare file names, which the tools look up next to the
// file naming them; anything with a directory part is refused, because a
// build controls these files and must not make a step read elsewhere.
func listedFiles(path string) ([]listedFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", filepath.Base(path), err)
	}
	defer f.Close()
	var (
		files []listedFile
		sums  = map[string]string{}
		field string
	)
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "-----BEGIN PGP SIGNATURE-----") {
			break
		}
		if line != "" && line[0] != ' ' && line[0] != '\t' {
			field, _, _ = strings.Cut(line, ":")
			continue
		}
		words := strings.Fields(line)
		if len(words) < 3 {
			continue
		}
		name := words[len(words)-1]
		switch field {
		case "Files":
			if name != filepath.Base(name) || name == "." || name == ".." {
				return nil, fmt.Errorf("%s lists %q, which is not a plain file name", filepath.Base(path), name)
			}
			files = append(files, listedFile{Name: name})
		case "Checksums-Sha256":
			sums[name] = words[0]
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", filepath.Base(path), err)
	}
	for i := range files {
		files[i].SHA256 = sums[files[i].Name]
	}
	return files, nil
}

// completeSourcePackages copies into dir each file that a .dsc in dir
// lists but dir lacks, from the directory the build's .dsc came from. A
// build's .changes lists only what the upload carries: for any revision
// after the first of an upstream version, dpkg-genchanges leaves the orig
// tarball out ("binary and diff" upload, the archive has it), and
// pbuilder copies only the listed files into its result directory. A
// Debian packager's result directory (dpkg-buildpackage's "..") still
// holds the whole source package next to the .changes, and lintian,
// dpkg-source -x and dcmd read it from there; so the steps leave dist/ the
// same way. The .changes itself is not touched. A copied file must have
// the SHA-256 the .dsc names: a different orig would be a different
// source package.
func completeSourcePackages(env *Env, dir, from string) error {
	dscs, err := filepath.Glob(filepath.Join(dir, "*.dsc"))
	if err != nil {
		return fmt.Errorf("complete source package: %w", err)
	}
	for _, dsc := range dscs {
		files, err := listedFiles(dsc)
		if err != nil {
			return fmt.Errorf("complete source package: %w", err)
		}
		for _, lf := range files {
			dst := filepath.Join(dir, lf.Name)
			if _, err := os.Stat(dst); err == nil {
				continue
			}
			src := filepath.Join(from, lf.Name)
			if _, err := os.Stat(src); err != nil {
				env.Logf("%s lists %s, which is neither in %s nor in %s", env.rel(dsc), lf.Name, env.rel(dir), env.rel(from))
				continue
			}
			if lf.SHA256 != "" {
				sum, err := fileSHA256(src)
				if err != nil {
					return fmt.Errorf("complete source package: %w", err)
				}
				if sum != lf.SHA256 {
					return fmt.Errorf("%w: %s lists %s with SHA-256 %s, but %s has %s", ErrBuildFailed, env.rel(dsc), lf.Name, lf.SHA256, env.rel(src), sum)
				}
			}
			if err := copyFile(src, dst, 0o644); err != nil {
				return fmt.Errorf("complete source package: %w", err)
			}
			env.Logf("%s: copied %s from %s (the .dsc needs it; the .changes does not list it)", env.rel(dir), lf.Name, env.rel(from))
		}
	}
	return nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hash %s: %w", filepath.Base(path), err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
