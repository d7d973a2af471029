// Package client is a typed client of the master's REST API, for kiln ctl,
// the demo and tests. It speaks only the api package's types.
package client

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/kiln-build/kiln/master/api"
)

// DefaultMaster is where a client looks without $KILN_MASTER.
const DefaultMaster = "http://localhost:8010"

// Client talks to one master as one user (or anonymously).
type Client struct {
	base  string
	token string
	http  *http.Client
}

// New talks to master (default $KILN_MASTER, then DefaultMaster) with token
// as the bearer token (default $KILN_TOKEN).
func New(master, token string) *Client {
	master = cmp.Or(master, os.Getenv("KILN_MASTER"), DefaultMaster)
	return &Client{base: strings.TrimRight(master, "/"), token: cmp.Or(token, os.Getenv("KILN_TOKEN")), http: &http.Client{}}
}

// Error is an answer other than 2xx; Message is the API's own.
type Error struct {
	Code    int
	Message string
}

func (e *Error) Error() string { return e.Message }

// IsStatus reports whether err is an API answer with HTTP status code.
func IsStatus(err error, code int) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}

// do sends a request and returns the body of a 2xx answer; other answers
// become an *Error carrying the API's message.
func (c *Client) do(ctx context.Context, method, path string, body any) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.send(req)
	if err != nil {
		return nil, fmt.Errorf("reach master at %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("read answer to %s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, answerError(method, path, resp.StatusCode, data)
	}
	return data, nil
}

func answerError(method, path string, code int, data []byte) error {
	var e api.Error
	if json.Unmarshal(data, &e) == nil && e.Error != "" {
		return &Error{Code: code, Message: e.Error}
	}
	return &Error{Code: code, Message: fmt.Sprintf("%s %s: HTTP %d: %s", method, path, code, strings.TrimSpace(string(data)))}
}

func call[T any](ctx context.Context, c *Client, method, path string, body any) (T, error) {
	var out T
	data, err := c.do(ctx, method, path, body)
	if err != nil {
		return out, err
	}
	if err := json.Unmarshal(data, &out); err != nil {
		return out, fmt.Errorf("decode answer to %s %s: %w", method, path, err)
	}
	return out, nil
}

// send adds the user's token, when there is one, as a bearer token.
func (c *Client) send(req *http.Request) (*http.Response, error) {
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	return c.http.Do(req)
}

func id(n int64) string { return strconv.FormatInt(n, 10) }

// page adds the paging and filter parameters the list routes share. The
// limit is always sent: 0 asks for every entry, as the API takes it.
func page(q url.Values, component, target, status string, limit, offset int) url.Values {
	for k, v := range map[string]string{"component": component, "target": target, "status": status} {
		if v != "" {
			q.Set(k, v)
		}
	}
	q.Set("limit", strconv.Itoa(limit))
	q.Set("offset", strconv.Itoa(offset))
	return q
}

// Force builds a component (COMPONENT@TARGET for one target).
func (c *Client) Force(ctx context.Context, r api.ForceRequest) (*api.ForceResult, error) {
	return call[*api.ForceResult](ctx, c, http.MethodPost, "/api/v1/force", r)
}

// Builds lists builds, newest first.
func (c *Client) Builds(ctx context.Context, f api.BuildFilter) (*api.BuildList, error) {
	q := page(url.Values{}, f.Component, f.Target, f.Status, f.Limit, f.Offset)
	if f.Worker != "" {
		q.Set("worker", f.Worker)
	}
	if f.Buildset > 0 {
		q.Set("buildset", id(f.Buildset))
	}
	return call[*api.BuildList](ctx, c, http.MethodGet, "/api/v1/builds?"+q.Encode(), nil)
}

// Build is one build with the change that caused it.
func (c *Client) Build(ctx context.Context, build int64) (*api.BuildDetail, error) {
	return call[*api.BuildDetail](ctx, c, http.MethodGet, "/api/v1/builds/"+id(build), nil)
}

// Cancel ends a pending or running build and returns it.
func (c *Client) Cancel(ctx context.Context, build int64) (*api.Build, error) {
	return call[*api.Build](ctx, c, http.MethodPost, "/api/v1/builds/"+id(build)+"/cancel", nil)
}

// Rebuild requests a build's builder again at the same revision.
func (c *Client) Rebuild(ctx context.Context, build int64) (*api.ForceResult, error) {
	return call[*api.ForceResult](ctx, c, http.MethodPost, "/api/v1/builds/"+id(build)+"/rebuild", nil)
}

// Builders lists builders with their latest build.
func (c *Client) Builders(ctx context.Context, f api.BuilderFilter) (*api.BuilderList, error) {
	q := page(url.Values{}, f.Component, f.Target, f.Status, f.Limit, f.Offset)
	return call[*api.BuilderList](ctx, c, http.MethodGet, "/api/v1/builders?"+q.Encode(), nil)
}

// Workers lists the workers.
func (c *Client) Workers(ctx context.Context) ([]api.Worker, error) {
	return call[[]api.Worker](ctx, c, http.MethodGet, "/api/v1/workers", nil)
}

// Explain says why a request waits.
func (c *Client) Explain(ctx context.Context, build int64) (*api.Explanation, error) {
	return call[*api.Explanation](ctx, c, http.MethodGet, "/api/v1/requests/"+id(build)+"/explain", nil)
}

// Changes lists changes, newest first.
func (c *Client) Changes(ctx context.Context, f api.ChangeFilter) (*api.ChangeList, error) {
	q := page(url.Values{}, f.Component, "", "", f.Limit, f.Offset)
	return call[*api.ChangeList](ctx, c, http.MethodGet, "/api/v1/changes?"+q.Encode(), nil)
}

// Config is the config the farm runs and the last refusal.
func (c *Client) Config(ctx context.Context) (*api.ConfigStatus, error) {
	return call[*api.ConfigStatus](ctx, c, http.MethodGet, "/api/v1/config", nil)
}

// Pollers lists the repository pollers.
func (c *Client) Pollers(ctx context.Context) ([]api.Poller, error) {
	return call[[]api.Poller](ctx, c, http.MethodGet, "/api/v1/pollers", nil)
}

// Repos lists channels × targets with their packages; an empty channel
// lists every channel.
func (c *Client) Repos(ctx context.Context, channel, target string) (*api.RepoList, error) {
	path := "/api/v1/repos"
	if channel != "" {
		path += "/" + url.PathEscape(channel) + "/packages"
		if target != "" {
			path += "?" + url.Values{"target": {target}}.Encode()
		}
	}
	return call[*api.RepoList](ctx, c, http.MethodGet, path, nil)
}

// ClientConfig is the apt or yum source text for one target of a channel.
func (c *Client) ClientConfig(ctx context.Context, channel, target string) (string, error) {
	data, err := c.do(ctx, http.MethodGet, "/api/v1/repos/"+url.PathEscape(channel)+"/client-config?"+url.Values{"target": {target}}.Encode(), nil)
	return string(data), err
}

// Rollback serves a channel's previous version again.
func (c *Client) Rollback(ctx context.Context, channel string) (*api.RollbackResult, error) {
	return call[*api.RollbackResult](ctx, c, http.MethodPost, "/api/v1/repos/"+url.PathEscape(channel)+"/rollback", nil)
}

// Log copies a build's log to w; with follow it reads the server-sent
// events until the build ends and returns its final status.
func (c *Client) Log(ctx context.Context, build int64, follow bool, w io.Writer) (string, error) {
	path := "/api/v1/builds/" + id(build) + "/log"
	if follow {
		path += "?follow=1"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return "", fmt.Errorf("GET %s: %w", path, err)
	}
	resp, err := c.send(req)
	if err != nil {
		return "", fmt.Errorf("reach master at %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		data, _ := io.ReadAll(resp.Body)
		return "", answerError(http.MethodGet, path, resp.StatusCode, data)
	}
	if !follow {
		_, err := io.Copy(w, resp.Body)
		return "", err
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	event := ""
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data := strings.TrimPrefix(line, "data: ")
			if event == "end" {
				return data, nil
			}
			fmt.Fprintln(w, data)
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("follow log: %w", err)
	}
	return "", nil
}
