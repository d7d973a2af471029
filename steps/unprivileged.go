package steps

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
)

// account is a user a worker running as root runs a tool as: nobody for
// lintian, which reads what the build's author controls; the sbuild user,
// whose subordinate ids unshare maps into the build's namespace.
type account struct {
	name     string
	uid, gid int
	home     string
}

// lookupAccount finds a user and its primary group.
func lookupAccount(name string) (*account, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("no user %s to run as: %w", name, err)
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return nil, fmt.Errorf("user %s: uid %q: %w", name, u.Uid, err)
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return nil, fmt.Errorf("user %s: gid %q: %w", name, u.Gid, err)
	}
	return &account{name: name, uid: uid, gid: gid, home: u.HomeDir}, nil
}

// argv is a command line run as the account, through setpriv; a nil
// account runs it as the worker's own user. setpriv (util-linux, Essential
// on Debian, so on every Debian worker) only changes the ids and execs:
// unlike runuser or su it opens no PAM session. --clear-groups drops
// root's supplementary groups and --inh-caps every capability; with
// noNewPrivs neither the tool nor what it runs can gain privileges back,
// which a tool that needs the setuid newuidmap (unshare) cannot have.
func (as *account) argv(noNewPrivs bool, argv []string) []string {
	if as == nil {
		return argv
	}
	priv := []string{"setpriv", "--reuid=" + strconv.Itoa(as.uid), "--regid=" + strconv.Itoa(as.gid), "--clear-groups", "--inh-caps=-all"}
	if noNewPrivs {
		priv = append(priv, "--no-new-privs")
	}
	return append(append(priv, "--"), argv...)
}

// stage is the private directory a tool run as an account reads from.
type stage struct {
	dir       string
	home, tmp string   // under dir, writable by lintian's user
	names     []string // the files to check, relative to dir
	staged    map[string]string
}

// stageFor copies the files a tool reads into a new directory, with every
// file each .changes lists and every file of each .dsc (listed or given),
// all taken from beside the file that names them, as lintian and
// dpkg-source look for them. A missing one fails here, named, rather than
// deep inside lintian. With as set, the directory and its files then
// belong to that user: it is created under TMPDIR (not the workspace,
// whose parents nobody may not enter), filled while only root can write to
// it, and handed over last.
func stageFor(env *Env, tool string, files []string, as *account) (*stage, error) {
	dir, err := os.MkdirTemp("", "kiln-"+tool+"-")
	if err != nil {
		return nil, fmt.Errorf("stage: %w", err)
	}
	st := &stage{dir: dir, home: filepath.Join(dir, ".home"), tmp: filepath.Join(dir, ".tmp"), staged: map[string]string{}}
	for _, f := range files {
		name, err := st.add(env, f)
		if err != nil {
			return st, err
		}
		st.names = append(st.names, name)
		if err := st.addListed(env, f); err != nil {
			return st, err
		}
	}
	for _, d := range []string{st.home, st.tmp} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return st, fmt.Errorf("stage: %w", err)
		}
	}
	if as == nil {
		return st, nil
	}
	if err := searchableByOthers(filepath.Dir(dir), tool); err != nil {
		return st, err
	}
	// Children first: once the directory is nobody's, nobody could swap
	// names in it, but by then there is nothing left to do in it.
	err = filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		return os.Lchown(p, as.uid, as.gid)
	})
	if err == nil {
		err = os.Chown(dir, as.uid, as.gid)
	}
	if err != nil {
		return st, fmt.Errorf("stage: hand over to uid %d: %w", as.uid, err)
	}
	return st, nil
}

// addListed stages what f names: the files of a .changes, then those of
// each .dsc among them (or of f, if it is a .dsc).
func (st *stage) addListed(env *Env, f string) error {
	var dscs []string
	switch {
	case strings.HasSuffix(f, ".dsc"):
		dscs = append(dscs, f)
	case strings.HasSuffix(f, ".changes"):
		listed, err := listedFiles(f)
		if err != nil {
			return err
		}
		for _, lf := range listed {
			p := filepath.Join(filepath.Dir(f), lf.Name)
			if err := st.need(env, p, f, ErrNoArtifacts); err != nil {
				return err
			}
			if strings.HasSuffix(lf.Name, ".dsc") {
				dscs = append(dscs, p)
			}
		}
	}
	for _, dsc := range dscs {
		listed, err := listedFiles(dsc)
		if err != nil {
			return err
		}
		for _, lf := range listed {
			if err := st.need(env, filepath.Join(filepath.Dir(dsc), lf.Name), dsc, ErrMissingSource); err != nil {
				return err
			}
		}
	}
	return nil
}

// need stages p, which by names lists; a missing p is an error wrapping
// kind, or ErrMissingOrig for an upstream tarball.
func (st *stage) need(env *Env, p, by string, kind error) error {
	if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
		name := filepath.Base(p)
		if isOrig(name) { // the tarball or its .asc
			return fmt.Errorf("%w %s: not next to %s (%s)", ErrMissingOrig, name, env.rel(by), origHint)
		}
		return fmt.Errorf("%w: %s lists %s, which is not next to it", kind, env.rel(by), name)
	}
	_, err := st.add(env, p)
	return err
}

// add copies the workspace file p into the stage under its base name,
// once; a link leading out of the workspace is refused (the copy is made
// as root, for another user to read).
func (st *stage) add(env *Env, p string) (string, error) {
	name := filepath.Base(p)
	if prev, ok := st.staged[name]; ok {
		if prev != p {
			return "", fmt.Errorf("stage: two files named %s: %s and %s", name, env.rel(prev), env.rel(p))
		}
		return name, nil
	}
	real, err := env.Path(env.rel(p))
	if err != nil {
		return "", fmt.Errorf("stage: %w", err)
	}
	fi, err := os.Stat(real)
	if err != nil {
		return "", fmt.Errorf("stage: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("stage: %s is not a regular file", env.rel(p))
	}
	if err := copyFile(real, filepath.Join(st.dir, name), 0o644); err != nil {
		return "", fmt.Errorf("stage: %w", err)
	}
	st.staged[name] = p
	return name, nil
}

func (st *stage) remove(env *Env) {
	if err := os.RemoveAll(st.dir); err != nil {
		env.Logf("removing %s: %v", st.dir, err)
	}
}

// searchableByOthers checks that a user without privileges can reach dir:
// every directory from / down to it must be searchable by others.
func searchableByOthers(dir, tool string) error {
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("stage: %w", err)
		}
		if fi.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("stage: %s is not searchable by others, so %s cannot run unprivileged under it; point TMPDIR elsewhere", d, tool)
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}

// mkdir makes a directory in the stage that the account may write to.
func (st *stage) mkdir(name string, as *account) (string, error) {
	dir := filepath.Join(st.dir, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", fmt.Errorf("stage: %w", err)
	}
	if as != nil {
		if err := os.Chown(dir, as.uid, as.gid); err != nil {
			return "", fmt.Errorf("stage: hand over to %s: %w", as.name, err)
		}
	}
	return dir, nil
}

// write puts a file into the stage for the account to read.
func (st *stage) write(path string, data []byte, as *account) error {
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("stage: %w", err)
	}
	if as != nil {
		if err := os.Chown(path, as.uid, as.gid); err != nil {
			return fmt.Errorf("stage: hand over to %s: %w", as.name, err)
		}
	}
	return nil
}
