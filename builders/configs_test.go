package builders

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestDemoConfig(t *testing.T) {
	cfg, m, err := LoadMatrix("../configs/demo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"kiln-hello@centos/9/x86_64", "kiln-hello@debian/bookworm/amd64",
		"libgrace@centos/9/x86_64", "libgrace@debian/bookworm/amd64",
		"opencore@centos/9/x86_64", "opencore@debian/bookworm/amd64",
	}
	if got := builderNames(m.Builders); !slices.Equal(got, want) {
		t.Errorf("builders = %v, want %v", got, want)
	}
	if m.Edges() != 2 || len(m.LongestChain()) != 2 {
		t.Errorf("edges %d, longest chain %v", m.Edges(), m.LongestChain())
	}
	for _, c := range cfg.Components {
		if !filepath.IsAbs(c.Git) || !strings.HasSuffix(c.Git, filepath.Join("configs", "src", c.Name)) {
			t.Errorf("%s: git %q is not resolved next to the config", c.Name, c.Git)
		}
	}
	if len(cfg.Workers) != 1 || cfg.Workers[0].Slots != 4 {
		t.Errorf("workers = %+v", cfg.Workers)
	}
	ch := cfg.Repos.Channels
	if len(ch) != 2 || ch[1].Name != "stable" || ch[1].PromoteFrom != "dev" || !ch[1].Approval || ch[0].Key != "demo" || ch[1].Key != "demo" {
		t.Errorf("channels = %+v", ch)
	}
	if got := builderNames(m.Rebuilds("libgrace")); len(got) != 4 {
		t.Errorf("a libgrace change rebuilds %v, want libgrace and opencore on both targets", got)
	}
}

func TestFarmLargeConfig(t *testing.T) {
	cfg, m, err := LoadMatrix("../configs/farm-large.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(cfg.Components); n != 70 {
		t.Errorf("components = %d, want 70", n)
	}
	if n := len(m.Targets); n != 64 {
		t.Errorf("targets = %d, want 64", n)
	}
	if n := len(m.Builders); n < 4000 || n > 4500 {
		t.Errorf("builders = %d, want 4,000-4,500", n)
	}
	checkOrder(t, m)
	if n := len(m.LongestChain()); n < 6 {
		t.Errorf("longest chain = %d builders, want at least 6", n)
	}
	distros := map[string]bool{}
	arches := map[string]map[string]bool{}
	for _, tg := range m.Targets {
		distros[tg.Distro] = true
		if arches[tg.Distro] == nil {
			arches[tg.Distro] = map[string]bool{}
		}
		arches[tg.Distro][tg.Arch] = true
	}
	for _, d := range []string{"debian", "ubuntu", "centos"} {
		if !distros[d] || len(arches[d]) < 2 || len(arches[d]) > 4 {
			t.Errorf("distro %s: arches %v", d, arches[d])
		}
	}
	// The file must read like an operator's: templates and shared filters,
	// not one entry per builder.
	if len(cfg.Templates) == 0 {
		t.Error("no templates")
	}
	filtered := 0
	for _, c := range cfg.Components {
		if len(c.Only)+len(c.Exclude) > 0 {
			filtered++
		}
	}
	if filtered == 0 {
		t.Error("no component uses only/exclude")
	}
	base, _ := m.Component("libgrace")
	if base.Rebuild != RebuildTransitive || len(m.Rebuilds("libgrace")) <= len(m.ComponentBuilders("libgrace")) {
		t.Errorf("libgrace (rebuild %s) rebuilds only itself", base.Rebuild)
	}
}
