package natsd

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

func TestSetUsers(t *testing.T) {
	s, err := Start(Options{Addr: "127.0.0.1:0", StoreDir: t.TempDir(), Users: []User{
		{Name: "master", Password: "m"}, {Name: "old", Password: "o", Publish: []string{"x.>"}, Subscribe: []string{"y.>"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown()
	closed := make(chan struct{})
	old, err := nats.Connect(s.ClientURL(), nats.UserInfo("old", "o"), nats.NoReconnect(), nats.ClosedHandler(func(*nats.Conn) { close(closed) }))
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if _, err := nats.Connect(s.ClientURL(), nats.UserInfo("new", "n")); err == nil {
		t.Fatal("a user not yet configured could connect")
	}

	if err := s.SetUsers([]User{{Name: "master", Password: "m"}, {Name: "new", Password: "n", Publish: []string{"x.>"}, Subscribe: []string{"y.>"}}}); err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(s.ClientURL(), nats.UserInfo("new", "n"))
	if err != nil {
		t.Fatalf("added user: %v", err)
	}
	nc.Close()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Error("the removed user's connection is still open")
	}
	if _, err := nats.Connect(s.ClientURL(), nats.UserInfo("old", "o")); err == nil {
		t.Error("the removed user can still connect")
	}
}
