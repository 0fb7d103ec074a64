package toxic

// Watched is how many stages s wakes on a change: the stages of open
// connections, not yet closed.
func Watched(s *Set) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.stages)
}
