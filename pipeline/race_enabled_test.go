//go:build race

package pipeline_test

// raceEnabled reports whether the race detector is on. Under it sync.Pool
// drops a random share of Puts, so allocation counts are not meaningful.
const raceEnabled = true
