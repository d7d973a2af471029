package steps

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/kiln-build/kiln/protocol"
)

const testNFPM = `name: hello
arch: ${ARCH}
version: ${prop.version}
maintainer: Kiln Test <test@example.com>
description: test package
contents:
  - src: share/hello.txt
    dst: /usr/share/hello/hello.txt
`

func TestNFPM(t *testing.T) {
	tests := []struct {
		name     string
		format   string
		packager string
		sign     bool
		tool     []string // inspects the package
		want     []string // in the tool's output
	}{
		{"deb from apt format", "apt", "", false, []string{"dpkg-deb", "-I"}, []string{"Package: hello", "Version: 1.2.3", "Architecture: amd64"}},
		{"rpm from yum format", "yum", "", false, []string{"rpm", "-qip", "--nosignature"}, []string{"Name        : hello", "Version     : 1.2.3", "Architecture: x86_64"}},
		{"rpm signed through the hook", "apt", "rpm", true, []string{"rpm", "-qip", "--nosignature"}, []string{"Signature   : RSA/SHA256"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := exec.LookPath(tt.tool[0]); err != nil {
				t.Skipf("%s not installed", tt.tool[0])
			}
			env, log := newTestEnv(t, protocol.Job{Format: tt.format, Target: "debian/bookworm/amd64"})
			env.Props.Set("version", "1.2.3")
			env.Props.Set("commit_time", "1000000000") // 2001-09-09: files get the commit's time
			writeFile(t, filepath.Join(env.Workspace, "pkg/nfpm.yaml"), testNFPM)
			writeFile(t, filepath.Join(env.Workspace, "pkg/share/hello.txt"), "hello\n")
			var signed int
			if tt.sign {
				key, err := openpgp.NewEntity("Kiln Test", "", "test@example.com", nil)
				if err != nil {
					t.Fatal(err)
				}
				env.SignRPM = func(header []byte) ([]byte, error) {
					signed++
					var sig bytes.Buffer
					err := openpgp.DetachSign(&sig, key, bytes.NewReader(header), nil)
					return sig.Bytes(), err
				}
			}
			env.Props.Set("pkgdir", "pkg")
			spec := protocol.Step{Type: "nfpm", With: map[string]string{"config": "${prop.pkgdir}/nfpm.yaml", "packager": tt.packager}}
			out, err := Run(context.Background(), env, spec)
			if err != nil {
				t.Fatalf("nfpm: %v; log:\n%s", err, log)
			}
			rel, _ := env.Props.Get("package")
			if !strings.HasPrefix(rel, "dist/hello") || out.Summary != "built "+rel {
				t.Fatalf("package property %q, summary %q", rel, out.Summary)
			}
			cmd := exec.Command(tt.tool[0], append(tt.tool[1:], filepath.Join(env.Workspace, rel))...)
			info, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%v: %v\n%s", cmd.Args, err, info)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(info), w) {
					t.Errorf("%s output lacks %q:\n%s", tt.tool[0], w, info)
				}
			}
			if tt.sign && signed == 0 {
				t.Error("signer hook never called")
			}
			if tool := "dpkg-deb"; tt.tool[0] == tool {
				list, err := exec.Command(tool, "-c", filepath.Join(env.Workspace, rel)).CombinedOutput()
				if err != nil || !strings.Contains(string(list), "./usr/share/hello/hello.txt") || !strings.Contains(string(list), "2001-09-09") {
					t.Errorf("deb contents (%v):\n%s", err, list)
				}
			}
		})
	}
}

func TestNFPMRefusesBadInput(t *testing.T) {
	tests := []struct {
		name   string
		format string
		with   map[string]string
		want   string
	}{
		{"unknown packager", "apt", map[string]string{"packager": "apk"}, `packager "apk" not supported`},
		{"no format, no packager", "", nil, "implies none"},
		{"config outside workspace", "apt", map[string]string{"config": "../nfpm.yaml"}, "escapes the workspace"},
		{"missing config", "apt", nil, "nfpm read config"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, _ := newTestEnv(t, protocol.Job{Format: tt.format})
			_, err := NFPM{}.Run(context.Background(), env, protocol.Step{With: tt.with})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}
