package natsd

import "fmt"

// SetUsers replaces the server's users without a restart: new users can
// log in at once, and the server closes the connections of users that are
// gone or whose password changed, as a config reload of nats-server does.
func (s *Server) SetUsers(users []User) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := *s.opts
	next.Users = serverUsers(users)
	if err := s.s.ReloadOptions(&next); err != nil {
		return fmt.Errorf("reload nats users: %w", err)
	}
	s.opts = &next
	return nil
}
