package worker

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kiln-build/kiln/protocol"
	"github.com/kiln-build/kiln/steps"
)

// ErrArtifactMismatch is returned when the stored object's digest or size
// differs from the file's: it changed while uploading, or the store is corrupt.
var ErrArtifactMismatch = errors.New("stored artifact does not match the file")

const artifactAttempts = 3

// storeArtifacts puts files into the artifact bucket under their sha256.
func (w *Worker) storeArtifacts(ctx context.Context, env *steps.Env, files []steps.File) ([]protocol.Artifact, error) {
	obs, err := w.objectStore(ctx)
	if err != nil {
		return nil, err
	}
	var out []protocol.Artifact
	for _, f := range files {
		var a protocol.Artifact
		var present bool
		for attempt := 0; ; attempt++ {
			a, present, err = storeArtifact(ctx, obs, f)
			if err == nil || errors.Is(err, ErrArtifactMismatch) || attempt+1 == artifactAttempts || ctx.Err() != nil {
				break
			}
			env.Logf("storing %s failed, retrying: %v", f.Name, err)
			select {
			case <-ctx.Done():
			case <-time.After(backoff(attempt + 3)):
			}
		}
		if err != nil {
			return out, fmt.Errorf("store %s: %w", f.Name, err)
		}
		how := "stored"
		if present {
			how = "already stored"
		}
		env.Logf("%s %s sha256:%s (%d bytes)", how, a.Name, a.SHA256, a.Size)
		out = append(out, a)
	}
	return out, nil
}

func (w *Worker) objectStore(ctx context.Context) (jetstream.ObjectStore, error) {
	w.mu.Lock()
	obs := w.objects
	w.mu.Unlock()
	if obs != nil {
		return obs, nil
	}
	obs, err := w.js.ObjectStore(ctx, protocol.ArtifactBucket)
	if err != nil {
		return nil, fmt.Errorf("open artifact store %s: %w", protocol.ArtifactBucket, err)
	}
	w.mu.Lock()
	w.objects = obs
	w.mu.Unlock()
	return obs, nil
}

// storeArtifact uploads one file unless an intact copy is already there,
// and reports whether it was.
func storeArtifact(ctx context.Context, obs jetstream.ObjectStore, f steps.File) (protocol.Artifact, bool, error) {
	sum, size, err := hashFile(f.Path)
	if err != nil {
		return protocol.Artifact{}, false, err
	}
	a := protocol.Artifact{Name: f.Name, Size: size, SHA256: hex.EncodeToString(sum)}
	want := "SHA-256=" + base64.URLEncoding.EncodeToString(sum)

	info, err := obs.GetInfo(ctx, a.SHA256)
	switch {
	case err == nil && info.Size == uint64(size) && info.Digest == want:
		return a, true, nil
	case err != nil && !errors.Is(err, jetstream.ErrObjectNotFound):
		return a, false, fmt.Errorf("look up %s: %w", a.SHA256, err)
	}

	file, err := os.Open(f.Path)
	if err != nil {
		return a, false, fmt.Errorf("open artifact: %w", err)
	}
	defer file.Close()
	info, err = obs.Put(ctx, jetstream.ObjectMeta{Name: a.SHA256, Description: f.Name}, file)
	if err != nil {
		return a, false, fmt.Errorf("put %s: %w", a.SHA256, err)
	}
	if info.Digest != want || info.Size != uint64(size) {
		return a, false, fmt.Errorf("%w: %s: got %s (%d bytes), want %s (%d bytes)", ErrArtifactMismatch, f.Name, info.Digest, info.Size, want, size)
	}
	return a, false, nil
}

func hashFile(path string) ([]byte, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, fmt.Errorf("open artifact: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return nil, 0, fmt.Errorf("hash artifact: %w", err)
	}
	return h.Sum(nil), n, nil
}
