//go:build race

package actor

// raceEnabled reports whether the race detector is on. A socket then reads
// through syscall.Read, which tells the detector what the kernel wrote
// (see sysRead); and under it sync.Pool drops a random share of Puts,
// so the tests' allocation counts are not meaningful.
const raceEnabled = true
