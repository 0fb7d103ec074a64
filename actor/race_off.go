//go:build !race

package actor

// raceEnabled reports whether the race detector is on (see race_on.go).
const raceEnabled = false
