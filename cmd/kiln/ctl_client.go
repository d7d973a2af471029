package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/kiln-build/kiln/master/api"
)

// ctlClient talks to the master's REST API.
type ctlClient struct {
	base  string
	token string
	http  *http.Client
}

// newCtlClient talks to master (default $KILN_MASTER, then localhost) as
// the user whose token is in $KILN_TOKEN, if any.
func newCtlClient(master string) *ctlClient {
	if master == "" {
		master = os.Getenv("KILN_MASTER")
	}
	if master == "" {
		master = "http://localhost:8010"
	}
	return &ctlClient{base: strings.TrimRight(master, "/"), token: os.Getenv("KILN_TOKEN"), http: &http.Client{}}
}

// do sends a request and returns the body of a 2xx answer; other answers
// become errors carrying the API's message.
func (c *ctlClient) do(method, path string, body any) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
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
		var e api.Error
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			return nil, fmt.Errorf("%s", e.Error)
		}
		return nil, fmt.Errorf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, strings.TrimSpace(string(data)))
	}
	return data, nil
}

func (c *ctlClient) getJSON(path string, out any) ([]byte, error) {
	data, err := c.do("GET", path, nil)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, out); err != nil {
		return nil, fmt.Errorf("decode answer to GET %s: %w", path, err)
	}
	return data, nil
}

func (c *ctlClient) postJSON(path string, body, out any) ([]byte, error) {
	data, err := c.do("POST", path, body)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, out); err != nil {
		return nil, fmt.Errorf("decode answer to POST %s: %w", path, err)
	}
	return data, nil
}

// streamLog copies a build's log to w; with follow it reads the server-sent
// events until the build ends and returns its final status.
func (c *ctlClient) streamLog(id string, follow bool, w io.Writer) (string, error) {
	path := "/api/v1/builds/" + id + "/log"
	if follow {
		path += "?follow=1"
	}
	req, err := http.NewRequest("GET", c.base+path, nil)
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
		var e api.Error
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			return "", fmt.Errorf("%s", e.Error)
		}
		return "", fmt.Errorf("GET %s: HTTP %d", path, resp.StatusCode)
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

// send adds the user's token, when there is one, as a bearer token.
func (c *ctlClient) send(req *http.Request) (*http.Response, error) {
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	return c.http.Do(req)
}

func ago(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("15:04:05")
}

func took(start, end time.Time) string {
	if start.IsZero() {
		return "-"
	}
	if end.IsZero() {
		return time.Since(start).Truncate(time.Second).String() + "…"
	}
	return end.Sub(start).Round(time.Millisecond).String()
}
