package signing

import (
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// DefaultMaxBatchBytes bounds the data of one batch. An rpm header is a few
// hundred KiB at most and repository indexes a few MiB, so 64 MiB leaves room
// while stopping a client from making the agent buffer without limit.
const DefaultMaxBatchBytes = 64 << 20

// Options configure an Agent.
type Options struct {
	// MaxBatchBytes limits the summed Data of one batch; 0 means
	// DefaultMaxBatchBytes.
	MaxBatchBytes int
	// TTL locks a key this long after it was unlocked; 0 keeps keys unlocked.
	TTL time.Duration
	// Audit receives one entry per signature; required.
	Audit  *AuditLog
	Logger *slog.Logger
}

// Agent holds the keys and signs batches for authenticated requesters.
type Agent struct {
	keys     []*Key
	maxBatch int
	ttl      time.Duration
	audit    *AuditLog
	log      *slog.Logger
}

// NewAgent takes ownership of keys (names and fingerprints must be unique).
func NewAgent(keys []*Key, opts Options) (*Agent, error) {
	if opts.Audit == nil {
		return nil, fmt.Errorf("new signing agent: an audit log is required")
	}
	seen := map[string]bool{}
	for _, k := range keys {
		for _, id := range []string{k.Name, k.Fingerprint} {
			if seen[strings.ToUpper(id)] {
				return nil, fmt.Errorf("new signing agent: key %q loaded twice", id)
			}
			seen[strings.ToUpper(id)] = true
		}
	}
	a := &Agent{keys: keys, maxBatch: opts.MaxBatchBytes, ttl: opts.TTL, audit: opts.Audit, log: opts.Logger}
	if a.maxBatch <= 0 {
		a.maxBatch = DefaultMaxBatchBytes
	}
	if a.log == nil {
		a.log = slog.Default()
	}
	a.log = a.log.With("component", "signer")
	return a, nil
}

// Key finds a key by name or fingerprint (hex, any case, spaces allowed).
func (a *Agent) Key(ref string) (*Key, error) {
	norm := strings.ToUpper(strings.ReplaceAll(ref, " ", ""))
	for _, k := range a.keys {
		if k.Name == ref || (len(norm) >= 16 && k.Fingerprint == norm) {
			return k, nil
		}
	}
	return nil, fmt.Errorf("key %q: %w", ref, ErrUnknownKey)
}

// Unlock decrypts the named key with passphrase, starting its ttl.
func (a *Agent) Unlock(ref string, passphrase []byte) error {
	k, err := a.Key(ref)
	if err != nil {
		return err
	}
	if err := k.Unlock(passphrase, a.ttl); err != nil {
		a.log.Warn("unlock failed", "key", k.Name, "err", err)
		return err
	}
	a.log.Info("key unlocked", "key", k.Name, "fingerprint", k.Fingerprint, "ttl", a.ttl)
	return nil
}

// PublicKey returns the armored public key of ref; it works while locked.
func (a *Agent) PublicKey(ref string) ([]byte, error) {
	k, err := a.Key(ref)
	if err != nil {
		return nil, err
	}
	return k.PublicKey(), nil
}

// Run locks keys whose ttl ran out, and all keys when ctx ends.
func (a *Agent) Run(ctx context.Context) error {
	tick := time.Second
	if a.ttl > 0 && a.ttl/4 < tick {
		tick = max(a.ttl/4, 10*time.Millisecond)
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			for _, k := range a.keys {
				k.Lock()
			}
			a.log.Info("keys locked on shutdown")
			return nil
		case now := <-t.C:
			for _, k := range a.keys {
				if k.lockIfExpired(now) {
					a.log.Info("key locked: ttl expired", "key", k.Name)
				}
			}
		}
	}
}

// Sign signs a whole batch or nothing: every item is checked (size, kind,
// key known and unlocked) before the first signature, and the audit entries
// are written before the signatures are returned.
func (a *Agent) Sign(ctx context.Context, who Identity, reqs []Request) ([]Response, error) {
	keys, err := a.check(reqs)
	if err != nil {
		a.log.Warn("batch refused", "requester", who, "items", len(reqs), "err", err)
		return nil, err
	}
	resps := make([]Response, len(reqs))
	if err := a.signAll(ctx, keys, reqs, resps); err != nil {
		a.log.Warn("batch failed", "requester", who, "items", len(reqs), "err", err)
		return nil, err
	}
	entries := make([]AuditEntry, len(reqs))
	now := time.Now().UTC()
	for i, r := range reqs {
		sum, _ := sha256Of(r) // checked in a.check
		entries[i] = AuditEntry{Time: now, Requester: who, Key: keys[i].Name, Fingerprint: keys[i].Fingerprint,
			Kind: r.Kind, Item: r.Name, SHA256: hex.EncodeToString(sum[:]), Size: len(r.Data)}
	}
	if err := a.audit.append(entries); err != nil {
		a.log.Error("audit log failed; signatures withheld", "err", err)
		return nil, err
	}
	a.log.Info("batch signed", "requester", who, "items", len(reqs))
	return resps, nil
}

func (a *Agent) check(reqs []Request) ([]*Key, error) {
	if len(reqs) == 0 {
		return nil, fmt.Errorf("%w: empty batch", ErrBadRequest)
	}
	total := 0
	keys := make([]*Key, len(reqs))
	for i, r := range reqs {
		total += len(r.Data)
		if total > a.maxBatch {
			return nil, fmt.Errorf("%w: batch data exceeds %d bytes", ErrTooLarge, a.maxBatch)
		}
		if !r.Kind.valid() {
			return nil, fmt.Errorf("%w: item %d (%s): unknown kind %q", ErrBadRequest, i, r.Name, r.Kind)
		}
		k, err := a.Key(r.Key)
		if err != nil {
			return nil, fmt.Errorf("item %d (%s): %w", i, r.Name, err)
		}
		if k.Locked() {
			return nil, fmt.Errorf("item %d (%s): key %q: %w", i, r.Name, k.Name, ErrLocked)
		}
		if err := checkPayload(r); err != nil {
			return nil, fmt.Errorf("item %d (%s): %w", i, r.Name, err)
		}
		keys[i] = k
	}
	return keys, nil
}

func checkPayload(r Request) error {
	switch r.Kind {
	case KindRPMHeader:
		return checkRPMHeader(r.Data)
	case KindSHA256State:
		_, err := restoreSHA256(r.Data)
		return err
	}
	return nil
}

// signAll spreads a batch over the CPUs: RSA signing is CPU-bound and one
// batch is the common case for a publisher signing a whole repository.
func (a *Agent) signAll(ctx context.Context, keys []*Key, reqs []Request, resps []Response) error {
	workers := min(runtime.GOMAXPROCS(0), len(reqs))
	next := make(chan int)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range next {
				if errs[w] != nil {
					continue
				}
				errs[w] = keys[i].withSigner(func(priv *packet.PrivateKey) error {
					sig, err := signOne(priv, reqs[i])
					resps[i] = Response{Signature: sig, Fingerprint: keys[i].Fingerprint}
					return err
				})
			}
		})
	}
	var err error
feed:
	for i := range reqs {
		select {
		case next <- i:
		case <-ctx.Done():
			err = fmt.Errorf("sign batch: %w", ctx.Err())
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err != nil {
		return err
	}
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}
