package worker

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Probe finds the tags a host offers. Each field may be replaced in tests;
// empty ones look at the running host.
type Probe struct {
	OSRelease string                            // default /etc/os-release
	LookPath  func(file string) (string, error) // default exec.LookPath
	Machine   func() (string, error)            // default uname -m
}

// Tags a host offers when it has all of the programs: each tool's own, and
// sbuild's unshare mode builds from a tarball only mmdebstrap makes.
var buildTools = []struct {
	tag      string
	programs []string
}{
	{"pbuilder", []string{"pbuilder"}},
	{"sbuild", []string{"sbuild", "mmdebstrap"}},
	{"mock", []string{"mock"}},
	{"rpmbuild", []string{"rpmbuild"}},
	{"dpkg-buildpackage", []string{"dpkg-buildpackage"}},
}

// Debian's names for the kernel's machine names, so a worker matches targets
// spelled either way (debian/bookworm/amd64, centos/9/x86_64).
var debianArch = map[string]string{
	"x86_64":  "amd64",
	"aarch64": "arm64",
	"i686":    "i386",
	"i586":    "i386",
	"i386":    "i386",
	"armv7l":  "armhf",
	"ppc64le": "ppc64el",
	"riscv64": "riscv64",
	"s390x":   "s390x",
}

// Detect returns the host's tags: the distribution ID, its codename or
// version (and the major version of a dotted one, so Rocky 9.4 matches
// targets named 9), the machine and its Debian alias, and the build tools
// found on PATH. Whatever cannot be read is left out, not fatal: a worker
// with fewer tags gets fewer builds, and says so in its log.
func (p Probe) Detect() (tags []string, problems []error) {
	osr := p.OSRelease
	if osr == "" {
		osr = "/etc/os-release"
	}
	fields, err := readOSRelease(osr)
	if err != nil {
		problems = append(problems, err)
	}
	if id := fields["ID"]; id != "" {
		tags = append(tags, id)
	}
	if c := fields["VERSION_CODENAME"]; c != "" {
		tags = append(tags, c)
	} else if v := fields["VERSION_ID"]; v != "" {
		tags = append(tags, v)
		if major, _, ok := strings.Cut(v, "."); ok {
			tags = append(tags, major)
		}
	}

	machine := p.Machine
	if machine == nil {
		machine = uname
	}
	if m, err := machine(); err != nil {
		problems = append(problems, err)
	} else if m != "" {
		tags = append(tags, m)
		if alias, ok := debianArch[m]; ok {
			tags = append(tags, alias)
		}
	}

	lookPath := p.LookPath
	if lookPath == nil {
		lookPath = exec.LookPath
	}
	for _, tool := range buildTools {
		if !slices.ContainsFunc(tool.programs, func(p string) bool { _, err := lookPath(p); return err != nil }) {
			tags = append(tags, tool.tag)
		}
	}
	return tags, problems
}

// mergeTags unions tag lists, sorted and without duplicates or blanks.
func mergeTags(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		for _, t := range l {
			if t = strings.TrimSpace(t); t != "" {
				out = append(out, t)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func readOSRelease(path string) (map[string]string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read os-release: %w", err)
	}
	fields := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		if uq, err := strconv.Unquote(v); err == nil {
			v = uq
		} else {
			v = strings.Trim(v, `'`)
		}
		fields[k] = strings.ToLower(v)
	}
	return fields, nil
}

func uname() (string, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "", fmt.Errorf("uname: %w", err)
	}
	return unix.ByteSliceToString(u.Machine[:]), nil
}
