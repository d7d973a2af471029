package web

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
)

const (
	sessionCookie = "kiln_session"
	loginCookie   = "kiln_login"
	sessionTTL    = 12 * time.Hour
)

// newDummyHash makes what an unknown user name is checked against, so that a
// wrong name costs as much time as a wrong password: a hash of the highest
// cost among the users'. It is made on first use so starting the master does
// not pay for it.
func newDummyHash(users []User) func() []byte {
	return sync.OnceValue(func() []byte {
		cost := bcrypt.MinCost
		for _, u := range users {
			if c, err := bcrypt.Cost([]byte(u.PasswordHash)); err == nil && c > cost {
				cost = c
			}
		}
		h, err := bcrypt.GenerateFromPassword([]byte("kiln-no-such-user"), cost)
		if err != nil {
			panic(fmt.Sprintf("web: bcrypt: %v", err))
		}
		return h
	})
}

// sessionInfo is who a request speaks for and how that was proven.
type sessionInfo struct {
	user    string
	payload string // the signed cookie payload; empty for bearer tokens
	bearer  bool
}

func (s *server) sign(parts ...string) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(strings.Join(parts, "\x00")))
	return m.Sum(nil)
}

// newSession makes the cookie value: payload "user\x00expiry\x00nonce" and
// its HMAC, both base64url.
func (s *server) newSession(user string) string {
	nonce := make([]byte, 16)
	rand.Read(nonce)
	payload := user + "\x00" + strconv.FormatInt(s.now().Add(sessionTTL).Unix(), 10) + "\x00" + hex.EncodeToString(nonce)
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(payload)) + "." + enc.EncodeToString(s.sign("session", payload))
}

// BearerUser authenticates a request by its "Authorization: Bearer TOKEN"
// header against users' tokens. sent reports whether the request carried an
// Authorization header at all; ok whether it named one of users. The pages
// and the master's REST API share it, so a token means the same in both.
func BearerUser(users map[string]User, r *http.Request) (name string, sent, ok bool) {
	auth := r.Header.Get("Authorization")
	if auth == "" {
		return "", false, false
	}
	tok, found := strings.CutPrefix(auth, "Bearer ")
	if !found || tok == "" {
		return "", true, false
	}
	for _, u := range users {
		if u.Token != "" && subtle.ConstantTimeCompare([]byte(u.Token), []byte(tok)) == 1 {
			return u.Name, true, true
		}
	}
	return "", true, false
}

// session authenticates the request by bearer token or session cookie.
func (s *server) session(r *http.Request) (sessionInfo, bool) {
	if name, sent, ok := BearerUser(s.users, r); sent {
		return sessionInfo{user: name, bearer: true}, ok
	}
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return sessionInfo{}, false
	}
	enc := base64.RawURLEncoding
	p64, m64, ok := strings.Cut(c.Value, ".")
	if !ok {
		return sessionInfo{}, false
	}
	payload, err1 := enc.DecodeString(p64)
	mac, err2 := enc.DecodeString(m64)
	if err1 != nil || err2 != nil || !hmac.Equal(mac, s.sign("session", string(payload))) {
		return sessionInfo{}, false
	}
	fields := strings.Split(string(payload), "\x00")
	if len(fields) != 3 {
		return sessionInfo{}, false
	}
	exp, err := strconv.ParseInt(fields[1], 10, 64)
	if err != nil || s.now().Unix() > exp {
		return sessionInfo{}, false
	}
	// A user removed from the config loses access at once.
	if _, ok := s.users[fields[0]]; !ok {
		return sessionInfo{}, false
	}
	return sessionInfo{user: fields[0], payload: string(payload)}, true
}

// csrfToken is bound to one session, so a token lifted from another session
// (or from before a logout) is worthless.
func (s *server) csrfToken(sess sessionInfo) string {
	if sess.bearer {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString(s.sign("csrf", sess.payload))
}

// requireLogin turns visitors away from every page but the login page and its
// assets when the pages are private.
func (s *server) requireLogin(next http.Handler) http.Handler {
	if s.public {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/login" || strings.HasPrefix(r.URL.Path, "/static/") {
			next.ServeHTTP(w, r)
			return
		}
		if _, ok := s.session(r); ok {
			next.ServeHTTP(w, r)
			return
		}
		if r.Method == http.MethodGet && r.Header.Get("Authorization") == "" {
			http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="kiln"`)
		http.Error(w, "authentication required", http.StatusUnauthorized)
	})
}

// action wraps a state-changing handler: it needs a user and, for cookie
// sessions, the session's CSRF token in the form. Bearer requests carry no
// ambient credential, so they need no CSRF token.
func (s *server) action(h func(http.ResponseWriter, *http.Request, string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sess, ok := s.session(r)
		if !ok {
			s.fail(w, r, http.StatusForbidden, "log in to do this")
			return
		}
		if !sess.bearer {
			want := s.csrfToken(sess)
			if got := r.PostFormValue("csrf"); subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
				s.fail(w, r, http.StatusForbidden, "the form's CSRF token is missing or wrong; reload the page and try again")
				return
			}
		}
		h(w, r, sess.user)
	}
}

type loginView struct {
	Next  string
	Token string
	Error string
	User  string
}

// loginPage protects the login form itself with a double-submit cookie so a
// third-party page cannot log a visitor in as someone else.
func (s *server) loginPage(w http.ResponseWriter, r *http.Request) {
	s.renderLogin(w, r, http.StatusOK, loginView{Next: safeNext(r.URL.Query().Get("next"))})
}

func (s *server) renderLogin(w http.ResponseWriter, r *http.Request, code int, v loginView) {
	tok := make([]byte, 16)
	rand.Read(tok)
	v.Token = hex.EncodeToString(tok)
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: v.Token, Path: "/login", HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode})
	s.render(w, r, code, "login", "login", v)
}

func (s *server) login(w http.ResponseWriter, r *http.Request) {
	c, err := r.Cookie(loginCookie)
	if err != nil || c.Value == "" || subtle.ConstantTimeCompare([]byte(c.Value), []byte(r.PostFormValue("csrf"))) != 1 {
		s.fail(w, r, http.StatusForbidden, "the login form's CSRF token is missing or wrong; reload the login page and try again")
		return
	}
	name, pass := r.PostFormValue("user"), r.PostFormValue("password")
	u, known := s.users[name]
	hash := []byte(u.PasswordHash)
	if !known || u.PasswordHash == "" {
		hash = s.dummy()
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(pass)) != nil || !known || u.PasswordHash == "" {
		s.log.Info("web: login refused", "user", name, "remote", r.RemoteAddr)
		s.renderLogin(w, r, http.StatusUnauthorized, loginView{Next: safeNext(r.PostFormValue("next")), Error: "wrong user name or password", User: name})
		return
	}
	s.log.Info("web: login", "user", name, "remote", r.RemoteAddr)
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: s.newSession(name), Path: "/", MaxAge: int(sessionTTL.Seconds()), HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode})
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Path: "/login", MaxAge: -1})
	http.Redirect(w, r, safeNext(r.PostFormValue("next")), http.StatusSeeOther)
}

func (s *server) logout(w http.ResponseWriter, r *http.Request, user string) {
	s.log.Info("web: logout", "user", user)
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Path: "/", MaxAge: -1, HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// safeNext keeps redirects after login on this site: only absolute paths,
// and not "//host" or "/\host", which browsers treat as another origin.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, `/\`) {
		return "/"
	}
	return next
}
