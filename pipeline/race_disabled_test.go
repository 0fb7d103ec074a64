//go:build !race

package pipeline_test

// raceEnabled reports whether the race detector is on.
const raceEnabled = false
