package hooks

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync/atomic"
	"time"
)

// Errors the handler maps to statuses other than 401 and 400.
var (
	ErrTooLarge        = errors.New("body too large")
	ErrUnknownProvider = errors.New("unknown webhook provider")
	ErrMethod          = errors.New("method not allowed")
	ErrUnknownEvent    = errors.New("event not handled")
	ErrSink            = errors.New("change not accepted")
)

// Defaults for Config's zero fields.
const (
	DefaultMaxBody      = 1 << 20
	DefaultDedupeSize   = 10000
	DefaultDedupeWindow = 24 * time.Hour
)

// Config is the operator's webhook configuration.
type Config struct {
	GitHub    ProviderConfig
	GitLab    ProviderConfig
	Gitea     ProviderConfig // also Forgejo
	Bitbucket ProviderConfig
	Generic   ProviderConfig
	// MaxBody bounds a request body in bytes; larger ones get 413.
	MaxBody int64
	// DedupeSize and DedupeWindow bound how many accepted deliveries are
	// remembered, and for how long, to refuse them a second time.
	DedupeSize   int
	DedupeWindow time.Duration
}

func (c Config) provider(name string) ProviderConfig {
	switch name {
	case "github":
		return c.GitHub
	case "gitlab":
		return c.GitLab
	case "gitea":
		return c.Gitea
	case "bitbucket":
		return c.Bitbucket
	default:
		return c.Generic
	}
}

// Options configure a Handler.
type Options struct {
	Config     Config
	Components []Component
	// Sink receives one Change per component a push builds. An error (say,
	// this master is not the leader) makes the handler answer 503 so the
	// sender retries; nil means the change is durably accepted.
	Sink func(context.Context, Change) error
	// Notify, when set, is called for every accepted push to a known
	// repository, so the poller of that repository can record the revision
	// instead of reporting it again, and poll at once. poller.Poller.Notify
	// fits.
	Notify func(repoURL, ref, revision string)
	Logger *slog.Logger
	Now    func() time.Time
}

// Handler serves /hooks/{github,gitlab,gitea,bitbucket,generic,config}.
type Handler struct {
	cfg    Config
	sink   func(context.Context, Change) error
	notify func(repoURL, ref, revision string)
	log    *slog.Logger
	now    func() time.Time
	routes atomic.Pointer[Routes]
	seen   *dedupe
}

// New returns a Handler; it fails on components RepoKey cannot normalise.
func New(o Options) (*Handler, error) {
	if o.Sink == nil {
		return nil, errors.New("new webhook handler: no sink")
	}
	if o.Config.MaxBody <= 0 {
		o.Config.MaxBody = DefaultMaxBody
	}
	if o.Config.DedupeSize <= 0 {
		o.Config.DedupeSize = DefaultDedupeSize
	}
	if o.Config.DedupeWindow <= 0 {
		o.Config.DedupeWindow = DefaultDedupeWindow
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Notify == nil {
		o.Notify = func(string, string, string) {}
	}
	h := &Handler{
		cfg:    o.Config,
		sink:   o.Sink,
		notify: o.Notify,
		log:    o.Logger,
		now:    o.Now,
		seen:   newDedupe(o.Config.DedupeSize, o.Config.DedupeWindow, o.Now),
	}
	if err := h.SetComponents(o.Components); err != nil {
		return nil, fmt.Errorf("new webhook handler: %w", err)
	}
	return h, nil
}

// SetComponents swaps the routing table atomically; requests in flight
// finish with the table they started with.
func (h *Handler) SetComponents(cs []Component) error {
	r, err := NewRoutes(cs)
	if err != nil {
		return err
	}
	h.routes.Store(r)
	return nil
}

type result struct {
	status   int
	msg      string
	provider string
	delivery string
	err      error
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	res := h.handle(r)
	attrs := []any{"provider", res.provider, "delivery", res.delivery, "status", res.status, "result", res.msg}
	switch {
	case res.status >= 500:
		h.log.Warn("webhook refused, sender should retry", append(attrs, "err", res.err)...)
	case res.status >= 400:
		h.log.Warn("webhook rejected", append(attrs, "remote", r.RemoteAddr)...)
	default:
		h.log.Info("webhook", attrs...)
	}
	if res.status == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", http.MethodPost)
	}
	if res.status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "10")
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(res.status)
	io.WriteString(w, res.msg+"\n")
}

func fail(status int, err error) result {
	return result{status: status, msg: err.Error(), err: err}
}

func (h *Handler) handle(r *http.Request) result {
	name := path.Base(r.URL.Path)
	configOnly := name == "config"
	p := providers[name]
	if configOnly {
		p = detectProvider(r.Header)
	}
	if p == nil {
		return fail(http.StatusNotFound, fmt.Errorf("%w %q", ErrUnknownProvider, name))
	}
	if r.Method != http.MethodPost {
		return fail(http.StatusMethodNotAllowed, fmt.Errorf("%w: %s, want POST", ErrMethod, r.Method))
	}
	res := h.handleProvider(r, p, configOnly)
	res.provider = p.name
	return res
}

func (h *Handler) handleProvider(r *http.Request, p *provider, configOnly bool) result {
	body, err := h.readBody(r)
	if err != nil {
		if errors.Is(err, ErrTooLarge) {
			return fail(http.StatusRequestEntityTooLarge, err)
		}
		return fail(http.StatusBadRequest, err)
	}
	if err := p.sig.verify(h.cfg.provider(p.name), r.Header, body); err != nil {
		return fail(http.StatusUnauthorized, fmt.Errorf("%s webhook: %w", p.name, err))
	}
	event := firstHeader(r.Header, p.eventHeaders)
	if event == "" {
		event = p.defaultEvent
	}
	if event == "" {
		return fail(http.StatusBadRequest, fmt.Errorf("%w: missing %s header", ErrMalformed, p.eventHeaders[0]))
	}
	switch p.events[event] {
	case eventPing:
		return result{status: http.StatusOK, msg: "pong"}
	case eventOther:
		return result{status: http.StatusAccepted, msg: fmt.Sprintf("ignored: %v: %q", ErrUnknownEvent, event)}
	}
	payload, err := formPayload(r.Header, body)
	if err != nil {
		return fail(http.StatusBadRequest, err)
	}
	pushes, err := p.parse(payload)
	if err != nil {
		return fail(http.StatusBadRequest, fmt.Errorf("%s %s: %w", p.name, event, err))
	}
	if len(pushes) == 0 {
		return fail(http.StatusBadRequest, fmt.Errorf("%s %s: %w: no ref updates", p.name, event, ErrMalformed))
	}
	for _, ps := range pushes {
		if err := ps.check(); err != nil {
			return fail(http.StatusBadRequest, fmt.Errorf("%s %s: %w", p.name, event, err))
		}
	}
	delivery := firstHeader(r.Header, p.deliveryHeaders)
	if delivery == "" {
		delivery = pushes[0].delivery
	}
	res := h.apply(r.Context(), p.name, delivery, body, pushes, configOnly)
	res.delivery = delivery
	return res
}

// readBody reads at most MaxBody bytes; a Content-Length over the limit is
// refused before reading anything.
func (h *Handler) readBody(r *http.Request) ([]byte, error) {
	if r.ContentLength > h.cfg.MaxBody {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, r.ContentLength, h.cfg.MaxBody)
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, h.cfg.MaxBody))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return nil, fmt.Errorf("%w: limit %d bytes", ErrTooLarge, h.cfg.MaxBody)
	}
	if err != nil {
		return nil, fmt.Errorf("read webhook body: %w", err)
	}
	return body, nil
}

// formPayload unwraps the "payload" field senders post when configured for
// application/x-www-form-urlencoded; the signature covers the form, so this
// happens after verification.
func formPayload(h http.Header, body []byte) ([]byte, error) {
	mt, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
	if mt != "application/x-www-form-urlencoded" {
		return body, nil
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, fmt.Errorf("%w: form body: %v", ErrMalformed, err)
	}
	if !form.Has("payload") {
		return nil, fmt.Errorf("%w: form body without a payload field", ErrMalformed)
	}
	return []byte(form.Get("payload")), nil
}

type notice struct{ repo, ref, revision string }

// apply turns verified pushes into changes and hands them to the sink.
func (h *Handler) apply(ctx context.Context, provider, delivery string, body []byte, pushes []push, configOnly bool) result {
	routes := h.routes.Load()
	var changes []Change
	var notices []notice
	var ignored []string
	for _, ps := range pushes {
		key, cs := routes.Lookup(ps.urls...)
		if configOnly {
			cs = onlyConfig(cs)
		}
		if len(cs) == 0 {
			what := "unknown repository"
			if configOnly {
				what = "not the config repository"
			}
			ignored = append(ignored, fmt.Sprintf("%s %s", what, ps.urls[0]))
			continue
		}
		branch, tag, ok := ParseRef(ps.ref)
		switch {
		case !ok:
			ignored = append(ignored, fmt.Sprintf("%s %s is neither a branch nor a tag", key, ps.ref))
			continue
		case ps.deleted():
			ignored = append(ignored, fmt.Sprintf("%s %s deleted", key, ps.ref))
			continue
		}
		notices = append(notices, notice{repo: cs[0].Repo, ref: ps.ref, revision: strings.ToLower(ps.revision)})
		matched := false
		for _, c := range cs {
			if !c.Wants(branch, tag, ps.defaultBranch) {
				continue
			}
			matched = true
			changes = append(changes, Change{
				Component: c.Name,
				RepoURL:   c.Repo,
				Branch:    branch,
				Tag:       tag,
				Revision:  strings.ToLower(ps.revision),
				Source:    Source{Kind: KindWebhook, Provider: provider, Delivery: delivery, User: ps.user},
				Time:      h.now(),
			})
		}
		if !matched {
			ignored = append(ignored, fmt.Sprintf("%s: no component builds %s", key, ps.ref))
		}
	}
	if len(changes) == 0 {
		h.sendNotices(notices)
		return result{status: http.StatusAccepted, msg: "ignored: " + strings.Join(ignored, "; ")}
	}

	release, dup, err := h.seen.acquire(ctx, dedupeKey(provider, delivery, body))
	if err != nil {
		return fail(http.StatusServiceUnavailable, fmt.Errorf("%w: %w", ErrSink, err))
	}
	if dup {
		return result{status: http.StatusOK, msg: "duplicate: delivery already accepted"}
	}
	for _, c := range changes {
		if err := h.sink(ctx, c); err != nil {
			release(false)
			return fail(http.StatusServiceUnavailable, fmt.Errorf("%w: %s: %w", ErrSink, c.Component, err))
		}
	}
	release(true)
	h.sendNotices(notices)
	names := make([]string, len(changes))
	for i, c := range changes {
		names[i] = c.Component + "@" + c.Branch + c.Tag
	}
	return result{status: http.StatusOK, msg: fmt.Sprintf("accepted: %d change(s): %s", len(changes), strings.Join(names, ", "))}
}

func (h *Handler) sendNotices(ns []notice) {
	for _, n := range ns {
		h.notify(n.repo, n.ref, n.revision)
	}
}

// dedupeKey identifies a delivery. Without a delivery id the body itself
// does: a byte-identical signed body is a replay.
func dedupeKey(provider, delivery string, body []byte) string {
	if delivery != "" {
		return provider + "\x00" + delivery
	}
	sum := sha256.Sum256(body)
	return provider + "\x00body:" + hex.EncodeToString(sum[:])
}

func onlyConfig(cs []Component) []Component {
	for _, c := range cs {
		if c.Name == ConfigComponent {
			return []Component{c}
		}
	}
	return nil
}

func firstHeader(h http.Header, names []string) string {
	for _, n := range names {
		if v := h.Get(n); v != "" {
			return v
		}
	}
	return ""
}
