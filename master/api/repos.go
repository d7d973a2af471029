package api

import (
	"context"
	"net/http"
	"time"
)

// RepoPackage is one package file a repository lists.
type RepoPackage struct {
	Name     string `json:"name"`
	Version  string `json:"version"`
	Arch     string `json:"arch"`
	FileName string `json:"file_name"`
	Size     int64  `json:"size"`
	SHA256   string `json:"sha256"`
	Build    int64  `json:"build"`
	// Published is when clients could first fetch it.
	Published time.Time `json:"published"`
}

// Repo is one channel's repository for one target.
type Repo struct {
	Channel string `json:"channel"`
	Target  string `json:"target"`
	Format  string `json:"format"` // deb or rpm
	// URL is where apt or dnf reach it.
	URL       string        `json:"url"`
	Version   string        `json:"version,omitempty"` // the channel version serving it
	Published time.Time     `json:"published,omitzero"`
	Packages  []RepoPackage `json:"packages"`
}

// RepoList is the answer of GET /api/v1/repos and .../packages.
type RepoList struct {
	Repos []Repo `json:"repos"`
}

// RollbackResult names the version a channel serves after a rollback.
type RollbackResult struct {
	Channel string `json:"channel"`
	Version string `json:"version"`
}

// RepoBackend is what the repository routes need from the master.
type RepoBackend interface {
	// Repos lists channels × targets; empty channel or target match all.
	Repos(ctx context.Context, channel, target string) ([]Repo, error)
	// RepoClientConfig is the apt .sources or yum .repo text for a target.
	RepoClientConfig(ctx context.Context, channel, target string) (string, error)
	RepoRollback(ctx context.Context, channel string) (*RollbackResult, error)
}

func (h *handler) registerRepos(mux *http.ServeMux) {
	h.handle(mux, "GET /api/v1/repos", ActionRead, h.repos)
	h.handle(mux, "GET /api/v1/repos/{channel}/packages", ActionRead, h.repoPackages)
	h.handle(mux, "GET /api/v1/repos/{channel}/client-config", ActionRead, h.repoClientConfig)
	h.handle(mux, "POST /api/v1/repos/{channel}/rollback", "rollback", h.repoRollback)
}

func (h *handler) repos(w http.ResponseWriter, r *http.Request) {
	if !onlyParams(w, r) {
		return
	}
	h.listRepos(w, r, "", "")
}

func (h *handler) repoPackages(w http.ResponseWriter, r *http.Request) {
	if !onlyParams(w, r, "target") {
		return
	}
	h.listRepos(w, r, r.PathValue("channel"), r.URL.Query().Get("target"))
}

func (h *handler) listRepos(w http.ResponseWriter, r *http.Request, channel, target string) {
	list, err := h.b.Repos(r.Context(), channel, target)
	if err != nil {
		h.fail(w, err)
		return
	}
	if list == nil {
		list = []Repo{}
	}
	writeJSON(w, http.StatusOK, RepoList{Repos: list})
}

func (h *handler) repoClientConfig(w http.ResponseWriter, r *http.Request) {
	if !onlyParams(w, r, "target") {
		return
	}
	target := r.URL.Query().Get("target")
	if target == "" {
		writeError(w, http.StatusBadRequest, "client-config needs ?target=DISTRO/VERSION/ARCH")
		return
	}
	text, err := h.b.RepoClientConfig(r.Context(), r.PathValue("channel"), target)
	if err != nil {
		h.fail(w, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte(text))
}

func (h *handler) repoRollback(w http.ResponseWriter, r *http.Request) {
	if !onlyParams(w, r) {
		return
	}
	res, err := h.b.RepoRollback(r.Context(), r.PathValue("channel"))
	if err != nil {
		h.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}
