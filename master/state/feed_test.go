package state

import (
	"context"
	"reflect"
	"testing"
	"time"
)

// The feed carries the ids of the builds a command ended, in commit order,
// to every subscriber; a closed subscription receives nothing more.
func TestFeedCarriesEndedBuildsInOrder(t *testing.T) {
	n := openNode(t, t.TempDir())
	defer n.Close()
	ctx := context.Background()
	metrics, closed := n.Events().Subscribe(), n.Events().Subscribe()
	closed.Close()
	out, err := n.Apply1(ctx, Command{Force: &ForceCmd{Component: "a", Time: t0, Builds: []NewBuild{{Builder: "a@t"}, {Builder: "b@t"}}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range out.Builds {
		if _, err := n.Apply1(ctx, Command{Cancel: &CancelCmd{Build: id, Reason: "test", Time: t0}}); err != nil {
			t.Fatal(err)
		}
	}
	var ended []Ended
	deadline := time.After(5 * time.Second)
	for len(ended) < 2 {
		select {
		case <-metrics.Ready():
		case <-deadline:
			t.Fatalf("feed delivered %v, want both builds ended", ended)
		}
		for _, batch := range metrics.Next() {
			for _, o := range batch {
				ended = append(ended, o.Finished...)
			}
		}
	}
	want := []Ended{{Build: out.Builds[0], Status: "cancelled"}, {Build: out.Builds[1], Status: "cancelled"}}
	if !reflect.DeepEqual(ended, want) {
		t.Errorf("feed: %+v, want %+v", ended, want)
	}
	if q := closed.Next(); len(q) != 0 {
		t.Errorf("closed subscription received %d batches", len(q))
	}
	n.Events().mu.Lock()
	subs := len(n.Events().subs)
	n.Events().mu.Unlock()
	if subs != 1 {
		t.Errorf("feed holds %d subscriptions, want the one still open", subs)
	}
}
