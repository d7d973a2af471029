package master_test

import (
	"fmt"
	"html"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kiln-build/kiln/internal/kilntest"
	"github.com/kiln-build/kiln/master/api"
	"github.com/kiln-build/kiln/protocol"
)

// whenYAML is the seed farm's wish: a step captures /etc/debian_version
// (here a file of the checkout) into a property, and the next steps run or
// are skipped by it and by the target.
const whenYAML = `
targets:
  - distro: debian
    versions: [bookworm]
    arches: [amd64]
    kind: shell
    format: apt
    tags: [lane]
    steps:
      - name: version
        type: shell
        command: [cat, debian_version]
        set_property: {debian_version: '^(\S+)$'}
      - {name: deb12, type: shell, script: "echo for twelve", when: {property.debian_version: '^12\.'}}
      - {name: deb11, type: shell, script: "exit 1", when: {property.debian_version: '^11\.'}}
      - {name: not-here, type: shell, script: "exit 1", when: {not: {distro: [debian]}}}
      - {name: done, type: shell, script: "echo done"}
components:
  - {name: base, git: %s}
workers:
  - {name: w1, credentials: w1.token, slots: 1}
  - {name: old, credentials: w2.token, slots: 1}
users:
  - {name: ops, token: ops.token}
repos:
  channels:
    - {name: dev, key: demo}
`

// TestConditionalStepsShowSkippedWithTheirCondition follows when: from the
// config through the job to a real worker and back: the build succeeds, and
// the API, the build page and the log show each skipped step as skipped with
// the condition that skipped it and the value it saw. A worker of protocol
// version 1, which would ignore when: and run every step, is refused and
// never sent the job.
func TestConditionalStepsShowSkippedWithTheirCondition(t *testing.T) {
	src := kilntest.GitRepo(t)
	src.Write("debian_version", "12.4\n")
	src.Commit("main", "bookworm")
	f := startFarm(t, fmt.Sprintf(whenYAML, src.Dir))

	oldNC, err := dialWorker(t, f.NATSURL, "old", "secret-w2")
	if err != nil {
		t.Fatal(err)
	}
	defer oldNC.Close()
	oldJobs, err := oldNC.SubscribeSync(protocol.JobSubject("old"))
	if err != nil {
		t.Fatal(err)
	}
	msg, err := oldNC.Request(protocol.HelloSubject("old"), protocol.Encode(protocol.Hello{V: 1, Worker: "old", Tags: []string{"lane"}, Slots: 1}), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var reply protocol.HelloReply
	if err := protocol.Decode(msg.Data, &reply); err != nil || reply.OK || !strings.Contains(reply.Error, "protocol 1") {
		t.Fatalf("hello of a protocol 1 worker: %+v %v, want a refusal naming its version", reply, err)
	}

	f.runWorker("w1", 1, "lane")
	f.waitConnected("w1")
	res := f.force("base")
	b := f.waitFinished(60*time.Second, res.Builds...)[0]
	if b.Status != protocol.StatusSuccess || b.Worker != "w1" {
		t.Fatalf("build %s: %s (%s) on %s", b.Builder, b.Status, b.Summary, b.Worker)
	}
	if n, _, _ := oldJobs.Pending(); n != 0 {
		t.Errorf("the protocol 1 worker was sent %d jobs", n)
	}

	var got api.BuildDetail
	if code := f.call("GET", "/api/v1/builds/"+itoa(b.ID), nil, &got); code != http.StatusOK {
		t.Fatalf("GET build: HTTP %d", code)
	}
	type row struct{ status, summary string }
	steps := map[string]row{}
	for _, s := range got.Steps {
		steps[s.Name] = row{s.Status, s.Summary}
	}
	deb11 := `skipped: when property.debian_version ~ ^11\. (was "12.4")`
	notHere := "skipped: when not distro in [debian] (is debian)"
	for name, want := range map[string]row{
		"checkout": {protocol.StatusSuccess, ""},
		"version":  {protocol.StatusSuccess, ""},
		"deb12":    {protocol.StatusSuccess, ""},
		"deb11":    {protocol.StatusSkipped, deb11},
		"not-here": {protocol.StatusSkipped, notHere},
		"done":     {protocol.StatusSuccess, ""},
	} {
		if g := steps[name]; g.status != want.status || want.summary != "" && g.summary != want.summary {
			t.Errorf("API step %s: %s %q, want %s %q", name, g.status, g.summary, want.status, want.summary)
		}
	}
	if got.Properties["debian_version"] != "12.4" {
		t.Errorf("properties %v lack debian_version 12.4", got.Properties)
	}

	_, page := f.get("/builds/" + itoa(b.ID))
	for _, s := range []string{deb11, notHere} {
		if !strings.Contains(page, html.EscapeString(s)) {
			t.Errorf("build page lacks %q", s)
		}
	}
	_, log := f.get("/api/v1/builds/" + itoa(b.ID) + "/log")
	if !strings.Contains(log, "for twelve") || !strings.Contains(log, "step deb11 "+deb11) {
		t.Errorf("log = %q", log)
	}
}
