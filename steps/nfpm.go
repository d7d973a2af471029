package steps

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/goreleaser/nfpm/v2"
	_ "github.com/goreleaser/nfpm/v2/deb" // registers the deb packager
	"github.com/goreleaser/nfpm/v2/files"
	_ "github.com/goreleaser/nfpm/v2/rpm" // registers the rpm packager
	"gopkg.in/yaml.v3"

	"github.com/kiln-build/kiln/protocol"
)

// NFPM builds a native .deb or .rpm from the component's nfpm.yaml, for
// targets where no chroot is needed.
//
// with: config (default nfpm.yaml), packager (deb|rpm; default from the
// job's format), dir (output, default dist). Variables in the config
// (${VERSION}, $ARCH, ${prop.version}) are looked up in the step's env,
// then among the build's properties by name, then by lower-cased name; the
// worker's own environment is deliberately not consulted, so nothing of the
// host leaks into a package. Files are stamped with the checked-out
// commit's time unless the config sets mtime. Sets the property "package"
// to the path built.
type NFPM struct{}

func (NFPM) Run(_ context.Context, env *Env, spec protocol.Step) (Outcome, error) {
	fail := func(err error) (Outcome, error) { return Outcome{Summary: err.Error()}, err }
	packager, err := nfpmPackager(env.Job.Format, spec.With["packager"])
	if err != nil {
		return fail(err)
	}
	cfgPath, err := env.Path(withDefault(spec.With["config"], "nfpm.yaml"))
	if err != nil {
		return fail(fmt.Errorf("nfpm config: %w", err))
	}
	outRel := withDefault(spec.With["dir"], "dist")
	outDir, err := env.Path(outRel)
	if err != nil {
		return fail(fmt.Errorf("nfpm output: %w", err))
	}
	raw, err := os.ReadFile(cfgPath)
	if err != nil {
		return fail(fmt.Errorf("nfpm read config: %w", err))
	}
	cfg, err := nfpm.ParseWithEnvMapping(bytes.NewReader(raw), nfpmMapping(env.Props, spec.Env))
	if err != nil {
		return fail(fmt.Errorf("nfpm parse %s: %w", spec.With["config"], err))
	}
	info, err := cfg.Get(packager)
	if err != nil {
		return fail(fmt.Errorf("nfpm %s config: %w", packager, err))
	}
	info = nfpm.WithDefaults(info)
	if mtime, ok, err := sourceDate(raw, env.Props); err != nil {
		return fail(err)
	} else if ok {
		info.MTime = mtime
	}
	resolveSources(info, filepath.Dir(cfgPath))
	nfpmRebuild(env, packager, info)
	if packager == "rpm" && env.SignRPM != nil {
		info.RPM.Signature.SignFn = func(r io.Reader) ([]byte, error) {
			header, err := io.ReadAll(r)
			if err != nil {
				return nil, fmt.Errorf("read rpm header: %w", err)
			}
			return env.SignRPM(header)
		}
	}
	if err := nfpm.PrepareForPackager(info, packager); err != nil {
		return fail(fmt.Errorf("nfpm prepare %s: %w", packager, err))
	}
	pkg, err := nfpm.Get(packager)
	if err != nil {
		return fail(fmt.Errorf("nfpm packager: %w", err))
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return fail(fmt.Errorf("nfpm output: %w", err))
	}
	name := pkg.ConventionalFileName(info)
	target := filepath.Join(outDir, name)
	info.Target = target
	if err := writePackage(pkg, info, target); err != nil {
		return fail(err)
	}
	rel := filepath.Join(outRel, name)
	env.Props.Set("package", rel)
	env.Logf("built %s (%s %s, %s)", rel, info.Name, info.Version, info.Arch)
	return Outcome{Summary: "built " + rel}, nil
}

// nfpmVersion is the version nfpm gives the package, as the format's tools
// print it.
func nfpmVersion(packager string, info *nfpm.Info) string {
	v := info.Version
	if info.Prerelease != "" {
		v += "~" + info.Prerelease
	}
	if info.VersionMetadata != "" {
		v += "+" + info.VersionMetadata
	}
	if packager == "rpm" {
		v += "-" + withDefault(info.Release, "1")
	} else if info.Release != "" {
		v += "-" + info.Release
	}
	if info.Epoch != "" && info.Epoch != "0" {
		v = info.Epoch + ":" + v
	}
	return v
}

// nfpmRebuild gives a package whose version the builder has published a
// higher one (see versions.go): +bN after the Debian revision (or the
// version, when there is none), .bN after the rpm Release.
func nfpmRebuild(env *Env, packager string, info *nfpm.Info) {
	base := nfpmVersion(packager, info)
	n := 0
	if !env.Job.ExactVersions {
		n = rebuildNumber(packager == "rpm", base, env.Job.Published)
	}
	if n > 0 {
		switch {
		case packager == "rpm":
			info.Release = fmt.Sprintf("%s.b%d", withDefault(info.Release, "1"), n)
		case info.Release != "":
			info.Release = fmt.Sprintf("%s+b%d", info.Release, n)
		default:
			info.VersionMetadata = strings.TrimPrefix(fmt.Sprintf("%s+b%d", info.VersionMetadata, n), "+")
		}
		env.Props.Set("rebuild", strconv.Itoa(n))
		env.Logf("rebuild: %s is published already; building %s", base, nfpmVersion(packager, info))
	}
	env.Props.Set("binary_version", nfpmVersion(packager, info))
}

func writePackage(pkg nfpm.Packager, info *nfpm.Info, target string) error {
	f, err := os.Create(target)
	if err != nil {
		return fmt.Errorf("nfpm create %s: %w", target, err)
	}
	if err := pkg.Package(info, f); err != nil {
		f.Close()
		os.Remove(target)
		return fmt.Errorf("nfpm package: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("nfpm write %s: %w", target, err)
	}
	return nil
}

func nfpmPackager(format, with string) (string, error) {
	if with == "" {
		switch format {
		case "apt":
			return "deb", nil
		case "yum":
			return "rpm", nil
		}
		return "", fmt.Errorf("nfpm: no packager given and job format %q implies none (want apt or yum)", format)
	}
	if with != "deb" && with != "rpm" {
		return "", fmt.Errorf("nfpm: packager %q not supported (want deb or rpm)", with)
	}
	return with, nil
}

func nfpmMapping(props *Properties, vars map[string]string) func(string) string {
	return func(name string) string {
		if p, ok := strings.CutPrefix(name, "prop."); ok {
			v, _ := props.Get(p)
			return v
		}
		if v, ok := vars[name]; ok {
			return v
		}
		if v, ok := props.Get(name); ok {
			return v
		}
		v, _ := props.Get(strings.ToLower(name))
		return v
	}
}

// sourceDate is the time stamped on the package's files when nfpm.yaml sets
// none: the commit's time, so one revision always makes the same bytes
// (and the artifact store holds it once) instead of nfpm's default, now.
func sourceDate(raw []byte, props *Properties) (time.Time, bool, error) {
	var top map[string]any
	if err := yaml.Unmarshal(raw, &top); err != nil {
		return time.Time{}, false, fmt.Errorf("nfpm parse: %w", err)
	}
	if _, set := top["mtime"]; set {
		return time.Time{}, false, nil
	}
	v, ok := props.Get("commit_time")
	if !ok {
		return time.Time{}, false, nil
	}
	secs, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("nfpm: property commit_time %q is not Unix seconds", v)
	}
	return time.Unix(secs, 0).UTC(), true, nil
}

// resolveSources makes the config's relative file references relative to
// the config's directory: nfpm resolves them against the process's working
// directory, which a worker running several builds cannot change.
func resolveSources(info *nfpm.Info, base string) {
	abs := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(base, *p)
		}
	}
	for _, c := range info.Contents {
		if c.Type != files.TypeSymlink {
			abs(&c.Source)
		}
	}
	for _, p := range []*string{
		&info.Changelog,
		&info.Scripts.PreInstall, &info.Scripts.PostInstall, &info.Scripts.PreRemove, &info.Scripts.PostRemove,
		&info.RPM.Scripts.PreTrans, &info.RPM.Scripts.PostTrans, &info.RPM.Scripts.Verify,
		&info.Deb.Scripts.Rules, &info.Deb.Scripts.Templates, &info.Deb.Scripts.Config,
	} {
		abs(p)
	}
}

func withDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
