package signing

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"text/tabwriter"
	"time"
)

// AuditEntry is one line of the audit log: one signature made.
type AuditEntry struct {
	Time        time.Time `json:"time"`
	Requester   Identity  `json:"requester"`
	Key         string    `json:"key"`
	Fingerprint string    `json:"fingerprint"`
	Kind        Kind      `json:"kind"`
	Item        string    `json:"item"`
	SHA256      string    `json:"sha256"`
	Size        int       `json:"size"`
}

// AuditLog appends entries as JSON lines. A batch's entries go out in one
// write before any signature is handed back, so no signature leaves the
// agent unaccounted for.
type AuditLog struct {
	mu sync.Mutex
	w  io.Writer
	f  *os.File
}

// OpenAuditLog opens (creating, mode 0640) path for appending.
func OpenAuditLog(path string) (*AuditLog, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open audit log: %w", err)
	}
	return &AuditLog{w: f, f: f}, nil
}

// NewAuditLog writes entries to w (tests, or stdout).
func NewAuditLog(w io.Writer) *AuditLog { return &AuditLog{w: w} }

func (l *AuditLog) append(entries []AuditEntry) error {
	var buf []byte
	for _, e := range entries {
		line, err := json.Marshal(e)
		if err != nil {
			return fmt.Errorf("encode audit entry: %w", err)
		}
		buf = append(append(buf, line...), '\n')
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := l.w.Write(buf); err != nil {
		return fmt.Errorf("write audit log: %w", err)
	}
	return nil
}

// Close syncs and closes the file, if the log owns one.
func (l *AuditLog) Close() error {
	if l.f == nil {
		return nil
	}
	if err := l.f.Sync(); err != nil {
		l.f.Close()
		return fmt.Errorf("sync audit log: %w", err)
	}
	return l.f.Close()
}

// ReadAudit parses an audit log; a malformed line is an error naming it.
func ReadAudit(r io.Reader) ([]AuditEntry, error) {
	var out []AuditEntry
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for n := 1; sc.Scan(); n++ {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var e AuditEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return nil, fmt.Errorf("audit log line %d: %w", n, err)
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read audit log: %w", err)
	}
	return out, nil
}

// WriteAuditTable prints entries for a terminal.
func WriteAuditTable(w io.Writer, entries []AuditEntry) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tREQUESTER\tKEY\tFINGERPRINT\tKIND\tITEM\tSHA256")
	for _, e := range entries {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			e.Time.UTC().Format(time.RFC3339), e.Requester, e.Key, e.Fingerprint, e.Kind, e.Item, e.SHA256)
	}
	return tw.Flush()
}
