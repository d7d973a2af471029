package steps

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/kiln-build/kiln/protocol"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
)

// Bounds on what the farm's channel may send: a Release file, and a
// compressed Sources index of many thousand source packages.
const (
	maxRelease = 4 << 20
	maxSources = 256 << 20
)

// origFromChannel takes the upstream tarballs the farm's dev channel
// publishes already for this source and upstream version (an earlier
// revision's upload put them in the pool): another revision of the same
// upstream version must carry the very same orig, or the archive would hold
// two files of one name. The index is trusted only through the channel's
// signature (the job's RepoKey on InRelease), the files only through the
// SHA-256 the signed index gives. No channel, or no such orig in it, is no
// error; a listed orig that cannot be fetched whole is.
func origFromChannel(ctx context.Context, env *Env, spec protocol.Step, parent, name, upstream string) (string, error) {
	if env.Job.RepoURL == "" || env.Job.RepoKey == "" {
		return "", nil
	}
	codename, _ := env.Props.Get("distro_version")
	if codename == "" || strings.ContainsAny(codename, "/.") {
		return "", nil
	}
	if spec.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, spec.Timeout)
		defer cancel()
	}
	base := strings.TrimSuffix(env.Job.RepoURL, "/")
	dists := base + "/dists/" + codename
	release, err := fetchSigned(ctx, dists+"/InRelease", env.Job.RepoKey)
	if err != nil {
		return "", fmt.Errorf("%w: the dev channel's index: %w", ErrMissingOrig, err)
	}
	const index = "main/source/Sources.gz"
	want := releaseSHA256(release, index)
	if want == "" {
		return "", nil // a channel from before Sources
	}
	gz, err := fetchChecked(ctx, dists+"/"+index, want, maxSources)
	if err != nil {
		return "", fmt.Errorf("%w: the dev channel's %s: %w", ErrMissingOrig, index, err)
	}
	dir, files, err := channelOrigs(gz, name, upstream)
	if err != nil || len(files) == 0 {
		return "", err
	}
	for _, f := range files {
		url := base + "/" + dir + "/" + f.Name
		dst := filepath.Join(parent, f.Name)
		got, err := download(ctx, url, dst, maxOrigDownload)
		if err == nil && got != f.SHA256 {
			err = fmt.Errorf("SHA-256 %s, the signed index says %s", got, f.SHA256)
		}
		if err != nil {
			os.Remove(dst)
			env.Logf("%s: %v", url, err)
			return "", fmt.Errorf("%w %s from the dev channel: %w", ErrMissingOrig, f.Name, err)
		}
	}
	env.Logf("orig %s from the dev channel's %s", files[0].Name, dir)
	return "orig from the dev channel", nil
}

// fetchSigned GETs a clearsigned file and returns its text once the
// armored key has verified it.
func fetchSigned(ctx context.Context, url, armoredKey string) ([]byte, error) {
	var raw bytes.Buffer
	if _, err := get(ctx, url, &raw, maxRelease); err != nil {
		return nil, err
	}
	keys, err := openpgp.ReadArmoredKeyRing(strings.NewReader(armoredKey))
	if err != nil {
		return nil, fmt.Errorf("the job's repository key: %w", err)
	}
	block, _ := clearsign.Decode(raw.Bytes())
	if block == nil {
		return nil, fmt.Errorf("%s is not clearsigned", url)
	}
	if _, err := block.VerifySignature(keys, nil); err != nil {
		return nil, fmt.Errorf("%s: signature: %w", url, err)
	}
	return block.Plaintext, nil
}

// fetchChecked GETs a small file that must have the given SHA-256.
func fetchChecked(ctx context.Context, url, sha string, limit int64) ([]byte, error) {
	var b bytes.Buffer
	got, err := get(ctx, url, &b, limit)
	if err != nil {
		return nil, err
	}
	if got != sha {
		return nil, fmt.Errorf("SHA-256 %s, the signed index says %s", got, sha)
	}
	return b.Bytes(), nil
}

// releaseSHA256 finds a file's SHA-256 in a Release file's SHA256 list.
func releaseSHA256(release []byte, file string) string {
	in := false
	for _, line := range strings.Split(string(release), "\n") {
		if line != "" && line[0] != ' ' {
			in = strings.HasPrefix(line, "SHA256:")
			continue
		}
		if f := strings.Fields(line); in && len(f) == 3 && f[2] == file {
			return f[0]
		}
	}
	return ""
}

// channelOrigs reads a gzipped Sources index for the orig tarballs (and
// their signatures) of name's upstream version, and the pool directory
// they sit in. Names and the directory come from the farm's own signed
// index, yet are checked as the publisher checks them: plain names, a
// relative directory without "..".
func channelOrigs(gz []byte, name, upstream string) (string, []listedFile, error) {
	z, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return "", nil, fmt.Errorf("dev channel Sources: %w", err)
	}
	sc := bufio.NewScanner(io.LimitReader(z, 4*maxSources))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	prefix := name + "_" + upstream + ".orig"
	var (
		pkg, dir, field string
		files           []listedFile
	)
	// Stanza by stanza: the first of name that lists the orig wins (every
	// revision of one upstream version lists the same one).
	for more := true; more; {
		more = sc.Scan()
		line := sc.Text()
		switch {
		case !more || line == "":
			if pkg == name && dir != "" && len(files) > 0 {
				return checkChannelOrigs(name, dir, files)
			}
			pkg, dir, files = "", "", nil
		case line[0] != ' ' && line[0] != '\t':
			k, v, _ := strings.Cut(line, ":")
			field = k
			switch k {
			case "Package":
				pkg = strings.TrimSpace(v)
			case "Directory":
				dir = strings.TrimSpace(v)
			}
		case field == "Checksums-Sha256":
			if f := strings.Fields(line); len(f) == 3 && strings.HasPrefix(f[2], prefix) && isOrig(f[2]) {
				files = append(files, listedFile{Name: f[2], SHA256: f[0]})
			}
		}
	}
	if err := sc.Err(); err != nil {
		return "", nil, fmt.Errorf("dev channel Sources: %w", err)
	}
	return "", nil, nil
}

func checkChannelOrigs(name, dir string, files []listedFile) (string, []listedFile, error) {
	if path.IsAbs(dir) || strings.Contains(dir, "..") {
		return "", nil, fmt.Errorf("dev channel Sources: directory %q of %s", dir, name)
	}
	for _, f := range files {
		if f.Name != filepath.Base(f.Name) || strings.Contains(f.Name, "..") {
			return "", nil, fmt.Errorf("dev channel Sources: %s lists %q", name, f.Name)
		}
	}
	return dir, files, nil
}
