//go:build unix

package testconn

import (
	"syscall"
	"testing"
)

// DialAtFDLimit connects a fresh socket to port on 127.0.0.1 with the
// process's descriptor limit (RLIMIT_NOFILE) lowered to the lowest free
// descriptor, so that the listener's next accept fails with EMFILE. It
// returns the socket's descriptor, to talk over once accepted, and
// restore, which puts the limit back (only the first call does
// anything; it also runs when the test ends) and must be called as soon
// as the test has seen the failure: until then the whole process, the
// test's own goroutines included, can open no file. The socket is closed
// when the test ends. If the limit cannot be lowered the test is skipped;
// other failures fail it.
func DialAtFDLimit(t testing.TB, port int) (fd int, restore func()) {
	t.Helper()
	return DialAtFDLimitLeaving(t, port, 0)
}

// DialAtFDLimitLeaving is DialAtFDLimit with spare descriptors left free
// under the limit: with 1, the listener's accept succeeds and the next
// descriptor the process opens after it (a proxy's dial to its target)
// fails with EMFILE.
func DialAtFDLimitLeaving(t testing.TB, port, spare int) (fd int, restore func()) {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	var orig syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &orig); err != nil {
		t.Fatal(err)
	}
	// The lowest free descriptor: every one below it is taken.
	free, err := syscall.Dup(fd)
	if err != nil {
		t.Fatal(err)
	}
	syscall.Close(free)
	restored := false
	restore = func() {
		if !restored {
			restored = true
			if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &orig); err != nil {
				t.Errorf("restoring RLIMIT_NOFILE: %v", err)
			}
		}
	}
	t.Cleanup(restore)
	low := orig
	low.Cur = uint64(free + spare)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Skipf("cannot lower RLIMIT_NOFILE: %v", err)
	}
	if err := syscall.Connect(fd, &syscall.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		restore()
		t.Fatalf("connect: %v", err)
	}
	return fd, restore
}
