package steps

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"

	"github.com/kiln-build/kiln/protocol"
)

// Upload collects the files matching the step's artifact globs (relative to
// the workspace) for the worker to store. A glob matching nothing fails the
// step: a build that was meant to make a package and made none is broken.
//
// Without globs it takes the packages of the job's format from dist/, where
// packaging steps put what they build, so the default step lists of the
// build kinds need no per-component configuration. With them it also keeps
// the records of a Debian upload, the .changes and .buildinfo, when the
// build made them (a dpkg-buildpackage build does, nfpm does not): they say
// what was built from what, with which build dependencies, and are kept
// with the build rather than published; and the source package (the .dsc
// and what it lists), which the master publishes in the Sources index.
type Upload struct{}

// defaultArtifacts are the globs of an upload step that names none; each
// must match.
var defaultArtifacts = map[string][]string{
	"apt": {"dist/*.deb"},
	"yum": {"dist/*.rpm"},
}

// uploadRecords are kept too when an upload step names no globs, if there.
// A .dsc brings the files it lists (see sourceFiles).
var uploadRecords = map[string][]string{
	"apt": {"dist/*.changes", "dist/*.buildinfo", "dist/*.dsc"},
}

// sourceFiles are the files a source package's .dsc lists, from its own
// directory: the master publishes a source package only whole.
func sourceFiles(env *Env, dsc File) ([]File, error) {
	listed, err := listedFiles(dsc.Path)
	if err != nil {
		return nil, err
	}
	var out []File
	for _, l := range listed {
		rel := filepath.Join(filepath.Dir(dsc.Name), l.Name)
		p, err := env.Path(rel)
		if err != nil {
			return nil, fmt.Errorf("%s lists %s: %w", dsc.Name, l.Name, err)
		}
		if fi, err := os.Stat(p); err != nil || !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("%s lists %s, which is not a file next to it", dsc.Name, l.Name)
		}
		out = append(out, File{Name: rel, Path: p})
	}
	return out, nil
}

// ErrNoArtifacts is returned when a glob matched no file, unless a
// packaging step said there was nothing to build (noRebuildProp).
var ErrNoArtifacts = errors.New("no file matched")

func (Upload) Run(_ context.Context, env *Env, spec protocol.Step) (Outcome, error) {
	fail := func(err error) (Outcome, error) { return Outcome{Summary: err.Error()}, err }
	patterns := spec.Artifacts
	var optional []string
	if len(patterns) == 0 {
		patterns, optional = defaultArtifacts[env.Job.Format], uploadRecords[env.Job.Format]
	}
	if len(patterns) == 0 {
		return fail(fmt.Errorf("upload: no artifacts globs given, and job format %q implies none", env.Job.Format))
	}
	seen := map[string]bool{}
	var out []File
	for i, g := range slices.Concat(patterns, optional) {
		required := i < len(patterns)
		if _, err := env.Path(g); err != nil {
			return fail(fmt.Errorf("upload %q: %w", g, err))
		}
		matches, err := filepath.Glob(filepath.Join(env.Workspace, g))
		if err != nil {
			return fail(fmt.Errorf("upload %q: %w", g, err))
		}
		n := 0
		for _, m := range matches {
			rel, err := filepath.Rel(env.Workspace, m)
			if err != nil {
				return fail(fmt.Errorf("upload %q: %w", m, err))
			}
			real, err := env.Path(rel)
			if err != nil {
				return fail(fmt.Errorf("upload %q: %w", g, err))
			}
			fi, err := os.Stat(real)
			if err != nil {
				return fail(fmt.Errorf("upload %s: %w", rel, err))
			}
			if !fi.Mode().IsRegular() {
				continue
			}
			n++
			if !seen[rel] {
				seen[rel] = true
				out = append(out, File{Name: rel, Path: real})
			}
		}
		if n == 0 && required {
			// A no-change rebuild of Architecture: all packages makes
			// nothing, and says so: that is not a broken build.
			if why, ok := env.Props.Get(noRebuildProp); ok {
				return Outcome{Summary: "nothing uploaded: " + why}, nil
			}
			return fail(fmt.Errorf("upload %q: %w", g, ErrNoArtifacts))
		}
	}
	for _, f := range slices.Clone(out) {
		if filepath.Ext(f.Name) != ".dsc" {
			continue
		}
		listed, err := sourceFiles(env, f)
		if err != nil {
			return fail(fmt.Errorf("upload: %w", err))
		}
		for _, l := range listed {
			if !seen[l.Name] {
				seen[l.Name] = true
				out = append(out, l)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	for _, f := range out {
		env.Logf("artifact %s", f.Name)
	}
	return Outcome{Summary: fmt.Sprintf("%d artifact(s)", len(out)), Artifacts: out}, nil
}
