package toxic

import (
	"fmt"
	"slices"
	"sync"
)

// Set is a named, ordered list of toxics shared by the connections that
// carry it (toxiproxy's toxic collection). Stages made from it apply its
// toxics in order and pick up every change on their next call; the Set
// wakes them when it changes, so that a removed toxic releases what it
// held even on a quiet connection. The zero value is an empty set ready
// to use. A Set is safe for concurrent use.
//
// A nil *Set is an empty set that cannot change, as a nil map is an empty
// map: List, Get and the stages made from it (NewStage, NewStages) see no
// toxic, and Clear does nothing; Add, Update and Remove fail with an
// error wrapping ErrInvalid, having nowhere to keep a change. NewFilter
// and WrapConn, whose only use of a set is its toxics, refuse a nil one
// (ErrInvalid) as the mistake it most likely is.
type Set struct {
	mu      sync.Mutex // guards following
	entries []entry
	gen     uint64 // counts changes; each entry records the one that made it
	stages  map[*Stage]struct{}
}

type entry struct {
	t   Toxic
	gen uint64
}

// Add appends t to the set. It fails with an error wrapping ErrInvalid
// for a toxic that does not validate and ErrExists for a name the set
// already holds, or ErrInvalid for a nil set.
func (s *Set) Add(t Toxic) error {
	if s == nil {
		return errNilSet("add", t.Name)
	}
	if err := t.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	if s.indexLocked(t.Name) >= 0 {
		s.mu.Unlock()
		return fmt.Errorf("%w: toxic %q", ErrExists, t.Name)
	}
	s.gen++
	s.entries = append(s.entries, entry{t: t, gen: s.gen})
	s.notifyLocked()
	return nil
}

// Update replaces the toxic named t.Name with t. Connections keep the
// toxic's state (what a latency holds, what limit_data has counted); a
// timeout starts again, as in toxiproxy. It fails with an error wrapping
// ErrInvalid for a bad toxic or a change of stream or type, and
// ErrNotFound for an unknown name; a nil set fails with ErrInvalid.
func (s *Set) Update(t Toxic) error {
	if s == nil {
		return errNilSet("update", t.Name)
	}
	if err := t.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	i := s.indexLocked(t.Name)
	if i < 0 {
		s.mu.Unlock()
		return fmt.Errorf("%w: toxic %q", ErrNotFound, t.Name)
	}
	old := s.entries[i].t
	if old.Stream != t.Stream || old.Kind.Type() != t.Kind.Type() {
		s.mu.Unlock()
		return fmt.Errorf("%w: toxic %q: stream and type cannot change", ErrInvalid, t.Name)
	}
	s.gen++
	s.entries[i] = entry{t: t, gen: s.gen}
	s.notifyLocked()
	return nil
}

// Remove removes the toxic named name; what it holds on each connection
// passes on, in order. It fails with an error wrapping ErrNotFound for an
// unknown name, and ErrInvalid for a nil set.
func (s *Set) Remove(name string) error {
	if s == nil {
		return errNilSet("remove", name)
	}
	s.mu.Lock()
	i := s.indexLocked(name)
	if i < 0 {
		s.mu.Unlock()
		return fmt.Errorf("%w: toxic %q", ErrNotFound, name)
	}
	s.gen++
	s.entries = slices.Delete(s.entries, i, i+1)
	s.notifyLocked()
	return nil
}

// Clear removes every toxic. On a nil set, empty already, it does
// nothing.
func (s *Set) Clear() {
	if s == nil {
		return
	}
	s.mu.Lock()
	s.gen++
	s.entries = nil
	s.notifyLocked()
}

// Get returns the toxic named name and whether the set holds it: false
// for a nil set.
func (s *Set) Get(name string) (Toxic, bool) {
	if s == nil {
		return Toxic{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if i := s.indexLocked(name); i >= 0 {
		return s.entries[i].t, true
	}
	return Toxic{}, false
}

// List returns the toxics in order: none (an empty slice) for a nil
// set.
func (s *Set) List() []Toxic {
	if s == nil {
		return []Toxic{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Toxic, len(s.entries))
	for i, e := range s.entries {
		out[i] = e.t
	}
	return out
}

func (s *Set) indexLocked(name string) int {
	return slices.IndexFunc(s.entries, func(e entry) bool { return e.t.Name == name })
}

// notifyLocked unlocks s.mu and wakes every stage, outside the lock.
func (s *Set) notifyLocked() {
	stages := make([]*Stage, 0, len(s.stages))
	for st := range s.stages {
		stages = append(stages, st)
	}
	s.mu.Unlock()
	for _, st := range stages {
		st.changed()
	}
}

// snapshot returns the generation and the entries of stream d if the set
// changed since gen. A nil set is at generation 0, with no entries.
func (s *Set) snapshot(gen uint64, d Stream) (uint64, []entry, bool) {
	if s == nil {
		return 0, nil, gen != 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gen == gen {
		return gen, nil, false
	}
	var out []entry
	for _, e := range s.entries {
		if e.t.Stream == d {
			out = append(out, e)
		}
	}
	return s.gen, out, true
}

// watch makes s wake st on a change; a nil set never changes.
func (s *Set) watch(st *Stage) {
	if s == nil {
		return
	}
	s.mu.Lock()
	if s.stages == nil {
		s.stages = make(map[*Stage]struct{})
	}
	s.stages[st] = struct{}{}
	s.mu.Unlock()
}

func (s *Set) unwatch(st *Stage) {
	if s == nil {
		return
	}
	s.mu.Lock()
	delete(s.stages, st)
	s.mu.Unlock()
}

// errNilSet is the error of a change asked of a nil set.
func errNilSet(op, name string) error {
	return fmt.Errorf("%w: %s toxic %q: nil set", ErrInvalid, op, name)
}
