package repo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
)

var versionName = regexp.MustCompile(`^v[0-9]{6,}$`)

// versions lists a channel's version directories, newest first.
func (p *Publisher) versions(channel string) ([]Version, error) {
	cdir := p.channelDir(channel)
	entries, err := os.ReadDir(cdir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list versions of %s: %w", channel, err)
	}
	cur, err := os.Readlink(filepath.Join(cdir, "current"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("list versions of %s: %w", channel, err)
	}
	var out []Version
	for _, e := range entries {
		if !e.IsDir() || !versionName.MatchString(e.Name()) {
			continue
		}
		info, err := e.Info()
		if err != nil {
			return nil, fmt.Errorf("list versions of %s: %w", channel, err)
		}
		out = append(out, Version{Channel: channel, ID: e.Name(), Created: info.ModTime().UTC(), Current: e.Name() == cur})
	}
	sort.Slice(out, func(i, j int) bool { return idNumber(out[i].ID) > idNumber(out[j].ID) })
	return out, nil
}

func idNumber(id string) int {
	n, _ := strconv.Atoi(id[1:])
	return n
}

func nextID(vs []Version) string {
	n := 1
	if len(vs) > 0 {
		n = idNumber(vs[0].ID) + 1
	}
	return fmt.Sprintf("v%06d", n)
}

func currentOf(vs []Version) *Version {
	for i := range vs {
		if vs[i].Current {
			return &vs[i]
		}
	}
	return nil
}

// Versions lists a channel's versions on disk, newest first, with their
// manifests' creation time and package count.
func (p *Publisher) Versions(channel string) ([]Version, error) {
	if err := checkChannel(channel); err != nil {
		return nil, err
	}
	vs, err := p.versions(channel)
	if err != nil {
		return nil, err
	}
	for i := range vs {
		if m, err := p.Manifest(channel, vs[i].ID); err == nil {
			vs[i].Created, vs[i].Packages = m.Version.Created, m.Version.Packages
		}
	}
	return vs, nil
}

// Manifest returns what a version contains. id "" means the current one.
func (p *Publisher) Manifest(channel, id string) (*Manifest, error) {
	if err := checkChannel(channel); err != nil {
		return nil, err
	}
	if id == "" {
		cur, err := os.Readlink(filepath.Join(p.channelDir(channel), "current"))
		if err != nil {
			return nil, fmt.Errorf("manifest of %s: %w: %w", channel, ErrNoVersion, err)
		}
		id = cur
	}
	if !versionName.MatchString(id) {
		return nil, fmt.Errorf("manifest of %s: %w: %q", channel, ErrNoVersion, id)
	}
	dir := filepath.Join(p.channelDir(channel), id, ".kiln")
	var rec versionRecord
	if err := readJSON(filepath.Join(dir, "version.json"), &rec); err != nil {
		return nil, fmt.Errorf("manifest of %s %s: %w: %w", channel, id, ErrNoVersion, err)
	}
	m := &Manifest{Version: rec.Version}
	for _, name := range rec.Targets {
		mt, err := readManifestFile(filepath.Join(dir, filepath.Base(name)))
		if err != nil {
			return nil, fmt.Errorf("manifest of %s %s: %w", channel, id, err)
		}
		m.Targets = append(m.Targets, mt)
	}
	return m, nil
}

func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// Rollback serves the newest version older than the current one. Calling
// it again goes further back, as long as pruning left versions.
func (p *Publisher) Rollback(ctx context.Context, channel string) (Version, error) {
	if err := checkChannel(channel); err != nil {
		return Version{}, err
	}
	unlock, err := p.lock()
	if err != nil {
		return Version{}, fmt.Errorf("rollback %s: %w", channel, err)
	}
	defer unlock()
	vs, err := p.versions(channel)
	if err != nil {
		return Version{}, fmt.Errorf("rollback %s: %w", channel, err)
	}
	cur := currentOf(vs)
	if cur == nil {
		return Version{}, fmt.Errorf("rollback %s: %w: nothing published", channel, ErrNoVersion)
	}
	for _, v := range vs {
		if idNumber(v.ID) < idNumber(cur.ID) {
			if err := p.switchTo(channel, v.ID); err != nil {
				return Version{}, fmt.Errorf("rollback %s: %w", channel, err)
			}
			v.Current = true
			p.opts.Logger.Info("rolled back", "channel", channel, "from", cur.ID, "to", v.ID)
			return v, nil
		}
	}
	return Version{}, fmt.Errorf("rollback %s: %w: no version older than %s", channel, ErrNoVersion, cur.ID)
}

// Prune removes versions beyond Options.KeepVersions (never the served
// one), then the pool files no kept version lists and the stored objects
// nothing links to any more. Publish only drops old version trees, which
// is cheap; the master runs Prune periodically (or `kiln ctl repo prune`).
func (p *Publisher) Prune(ctx context.Context, channel string) error {
	if err := checkChannel(channel); err != nil {
		return err
	}
	unlock, err := p.lock()
	if err != nil {
		return fmt.Errorf("prune %s: %w", channel, err)
	}
	defer unlock()
	if _, err := p.dropOldVersions(channel); err != nil {
		return err
	}
	removed, err := p.collectPool(ctx, channel)
	if err != nil {
		return err
	}
	objects, err := p.st.gc()
	if err != nil {
		return err
	}
	p.opts.Logger.Info("pruned", "channel", channel, "pool_files", removed, "objects", objects)
	return nil
}

// dropOldVersions removes version trees beyond KeepVersions.
func (p *Publisher) dropOldVersions(channel string) (int, error) {
	vs, err := p.versions(channel)
	if err != nil {
		return 0, err
	}
	removed, kept := 0, 0
	for _, v := range vs {
		if v.Current {
			continue
		}
		if kept < p.opts.KeepVersions-1 {
			kept++
			continue
		}
		if err := os.RemoveAll(filepath.Join(p.channelDir(channel), v.ID)); err != nil {
			return removed, fmt.Errorf("prune %s %s: %w", channel, v.ID, err)
		}
		removed++
	}
	return removed, nil
}

// collectPool deletes pool files that no remaining version lists.
func (p *Publisher) collectPool(ctx context.Context, channel string) (int, error) {
	vs, err := p.versions(channel)
	if err != nil {
		return 0, err
	}
	keep := map[string]bool{}
	for _, v := range vs {
		m, err := p.Manifest(channel, v.ID)
		if err != nil {
			// Without the list we cannot tell what the version needs: keep all.
			return 0, fmt.Errorf("prune %s: %w", channel, err)
		}
		for _, t := range m.Targets {
			for _, e := range t.Packages {
				keep[e.Path] = true
			}
		}
	}
	root := filepath.Join(p.channelDir(channel), poolDir)
	removed := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		if !keep[filepath.ToSlash(rel)] {
			removed++
			return os.Remove(path)
		}
		return nil
	})
	// The in-memory views of the pool, here and in other processes, are
	// rebuilt lazily from disk.
	delete(p.pools, channel)
	if removed > 0 {
		if genErr := p.bumpPoolGeneration(); genErr != nil && err == nil {
			err = genErr
		}
	}
	if err != nil {
		return removed, fmt.Errorf("prune pool of %s: %w", channel, err)
	}
	return removed, nil
}
