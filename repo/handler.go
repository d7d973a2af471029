package repo

import (
	"mime"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// contentTypes are the types apt, dnf and browsers expect for repository files.
var contentTypes = map[string]string{
	".deb":      "application/vnd.debian.binary-package",
	".rpm":      "application/x-rpm",
	".gz":       "application/gzip",
	".xz":       "application/x-xz",
	".xml":      "application/xml",
	".asc":      "application/pgp-signature",
	".gpg":      "application/pgp-signature",
	"Release":   "text/plain; charset=utf-8",
	"InRelease": "text/plain; charset=utf-8",
	"Packages":  "text/plain; charset=utf-8",
}

// Handler serves ROOT/<channel>/current/... as /<channel>/...; mount it
// under a prefix with http.StripPrefix. Hidden names, ".." and symlinks
// out of the root are refused; ranges and conditional requests work
// through http.ServeContent.
func Handler(root string) http.Handler {
	if real, err := filepath.EvalSymlinks(root); err == nil {
		root = real
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		file, ok := resolve(root, r.URL.Path)
		if !ok {
			http.NotFound(w, r)
			return
		}
		f, err := os.Open(file)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		defer f.Close()
		info, err := f.Stat()
		if err != nil || !info.Mode().IsRegular() {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", contentType(file))
		// Index files change with every publish; pool files never change.
		if strings.Contains(file, string(filepath.Separator)+"dists"+string(filepath.Separator)) && !strings.Contains(file, "by-hash") ||
			strings.HasSuffix(file, "repomd.xml") || strings.HasSuffix(file, "repomd.xml.asc") {
			w.Header().Set("Cache-Control", "no-cache")
		}
		http.ServeContent(w, r, "", info.ModTime(), f)
	})
}

// resolve maps a URL path to a file in a channel's current tree.
func resolve(root, urlPath string) (string, bool) {
	clean := path.Clean("/" + urlPath)
	if clean != urlPath && clean+"/" != urlPath {
		return "", false
	}
	parts := strings.Split(strings.TrimPrefix(clean, "/"), "/")
	if len(parts) < 2 {
		return "", false
	}
	for _, p := range parts {
		if p == "" || strings.HasPrefix(p, ".") {
			return "", false
		}
	}
	if parts[1] == "current" || versionName.MatchString(parts[1]) {
		return "", false // only the served tree, addressed without its version
	}
	chdir := filepath.Join(root, parts[0])
	cur, err := os.Readlink(filepath.Join(chdir, "current"))
	if err != nil || !versionName.MatchString(cur) {
		return "", false
	}
	file := filepath.Join(append([]string{chdir, cur}, parts[1:]...)...)
	// The only symlinks the publisher makes lead from a version into the
	// channel's pool; anything resolving elsewhere is refused.
	real, err := filepath.EvalSymlinks(file)
	if err != nil || !strings.HasPrefix(real, chdir+string(filepath.Separator)) {
		return "", false
	}
	return real, true
}

func contentType(file string) string {
	base := filepath.Base(file)
	if t, ok := contentTypes[base]; ok {
		return t
	}
	if filepath.Base(filepath.Dir(file)) == "SHA256" {
		return "application/octet-stream" // by-hash: any index, no extension
	}
	if t, ok := contentTypes[filepath.Ext(file)]; ok {
		return t
	}
	if t := mime.TypeByExtension(filepath.Ext(file)); t != "" {
		return t
	}
	return "application/octet-stream"
}
