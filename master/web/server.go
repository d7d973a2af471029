package web

import (
	"bytes"
	"context"
	"crypto/rand"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strconv"
	"time"
)

//go:embed templates/*.tmpl
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// User may log in with a password (checked against the bcrypt PasswordHash)
// or authenticate each request with "Authorization: Bearer <Token>". Either
// may be empty to disable that way in.
type User struct {
	Name         string
	PasswordHash string
	Token        string
}

// Options configure the pages.
type Options struct {
	Source  Source
	Actions Actions // nil: no force, rebuild or cancel forms
	Users   []User
	// PublicPages lets anonymous visitors read every page; when false every
	// page but /login and its assets needs a session or a token.
	PublicPages bool
	Title       string
	Logger      *slog.Logger
	// Now is the clock for durations and "ago" texts; time.Now when nil.
	Now func() time.Time
}

type server struct {
	src     Source
	actions Actions
	users   map[string]User
	public  bool
	title   string
	log     *slog.Logger
	now     func() time.Time
	key     []byte // signs session cookies; new per process, so a restart logs everyone out
	dummy   func() []byte
	pages   map[string]*template.Template
}

// New returns the handler serving every page. It panics without a Source,
// and if the embedded templates do not parse, which a test catches before
// any release.
func New(o Options) http.Handler {
	if o.Source == nil {
		panic("web.New: Options.Source is nil")
	}
	s := &server{
		src:     o.Source,
		actions: o.Actions,
		users:   make(map[string]User, len(o.Users)),
		public:  o.PublicPages,
		title:   o.Title,
		log:     o.Logger,
		now:     o.Now,
		key:     make([]byte, 32),
	}
	if s.title == "" {
		s.title = "Kiln"
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	for _, u := range o.Users {
		s.users[u.Name] = u
	}
	s.dummy = newDummyHash(o.Users)
	rand.Read(s.key)
	s.pages = mustParsePages()

	mux := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", cacheStatic(http.FileServerFS(static))))
	mux.HandleFunc("GET /{$}", s.gridPage)
	mux.HandleFunc("GET /builds", s.buildsPage)
	mux.HandleFunc("GET /builds/{id}", s.buildPage)
	mux.HandleFunc("GET /builds/{id}/log/events", s.logEvents)
	mux.HandleFunc("GET /workers", s.workersPage)
	mux.HandleFunc("GET /changes", s.changesPage)
	mux.HandleFunc("GET /repos", s.reposPage)
	mux.HandleFunc("GET /login", s.loginPage)
	mux.HandleFunc("POST /login", s.login)
	mux.HandleFunc("POST /logout", s.action(s.logout))
	mux.HandleFunc("POST /force", s.action(s.force))
	mux.HandleFunc("POST /builds/{id}/rebuild", s.action(s.rebuild))
	mux.HandleFunc("POST /builds/{id}/cancel", s.action(s.cancel))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, http.StatusNotFound, "no page at "+r.URL.Path)
	})
	return s.headers(s.requireLogin(mux))
}

// headers sets the security headers every response gets. The CSP allows only
// our own script and style files, so even an escaping bug could not run
// injected script.
func (s *server) headers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		next.ServeHTTP(w, r)
	})
}

func cacheStatic(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=300")
		next.ServeHTTP(w, r)
	})
}

// page is what every template gets; Data is the page's own view.
type page struct {
	Title  string
	Nav    string
	User   string
	CSRF   string
	Config ConfigStatus
	Data   any
	Now    time.Time
}

func (s *server) render(w http.ResponseWriter, r *http.Request, code int, name, nav string, data any) {
	p := page{Title: s.title, Nav: nav, Data: data, Now: s.now()}
	if sess, ok := s.session(r); ok {
		p.User = sess.user
		p.CSRF = s.csrfToken(sess)
	}
	if cs, err := s.src.ConfigStatus(r.Context()); err != nil {
		s.log.Warn("web: config status", "err", err)
	} else {
		p.Config = cs
	}
	var buf bytes.Buffer
	if err := s.pages[name].ExecuteTemplate(&buf, "layout", p); err != nil {
		s.log.Error("web: render", "page", name, "err", err)
		http.Error(w, "internal error rendering the page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	w.Write(buf.Bytes())
}

type failure struct {
	Code    int
	Status  string
	Message string
}

// fail renders an error page. Messages are shown to the visitor, so they
// never carry internal error text for 5xx.
func (s *server) fail(w http.ResponseWriter, r *http.Request, code int, msg string) {
	s.render(w, r, code, "error", "", failure{Code: code, Status: http.StatusText(code), Message: msg})
}

// sourceError answers a failed Source or Actions call.
func (s *server) sourceError(w http.ResponseWriter, r *http.Request, what string, err error) {
	switch {
	case errors.Is(err, ErrNotFound):
		s.fail(w, r, http.StatusNotFound, what+" not found")
	case errors.Is(err, ErrInvalid):
		s.fail(w, r, http.StatusBadRequest, err.Error())
	case errors.Is(err, context.Canceled):
		// The visitor went away; nobody reads the answer.
	default:
		s.log.Error("web: source", "what", what, "err", err)
		s.fail(w, r, http.StatusInternalServerError, "could not read "+what+"; the master's log says why")
	}
}

// badParam is the error for a query parameter that does not parse.
type badParam struct {
	name, reason string
}

func (e badParam) Error() string { return "bad query parameter " + e.name + ": " + e.reason }

func buildID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("build id %q: %w", r.PathValue("id"), ErrNotFound)
	}
	return id, nil
}
