package main

import (
	"strings"
	"testing"

	"github.com/bevgo/bev/internal/testredis"
)

// Counted libevent's way (from start-up to 5 ms before -d, divided by
// -d), the group's total is exact and its shares equal: the group starts
// empty at a clock aligned on the ticks, so the window holds -d's worth
// of refills, each shared by all the connections. Before that, the
// start-up bucket went to whoever asked first: 30600 B/s over 5 s, with a
// deviation up to 107.7 B/s. The tolerances are issue 12's: ±30 B/s and
// at most 20 B/s.
func TestLibeventWindowGroupLim(t *testing.T) {
	runUndisturbed(t, 0, "-libevent-window", "-d", seconds, "-g", "30000", "-n", "30", "-t", "100",
		"-check-grouplimit", "30", "-check-stddev", "20")
}

func TestLibeventWindowGroupConLim(t *testing.T) {
	runUndisturbed(t, 0, "-libevent-window", "-d", seconds, "-c", "1000", "-g", "30000", "-n", "30", "-t", "100",
		"-check-grouplimit", "30", "-check-connlimit", "20", "-check-stddev", "20")
}

// The scenarios with a group pass with the group's budget in Redis (one
// process), within the same tolerances as in the process, over the
// settled window. (con_lim has no group.)
func TestRedisScenarios(t *testing.T) {
	srv := testredis.New(t)
	redis := []string{"-group-redis", srv.URL()}
	scenarios := []struct {
		name string
		args []string
	}{
		{"group_lim", []string{"-g", "30000", "-n", "30", "-t", "100",
			"-check-grouplimit", groupTol, "-check-stddev", stddevTol}},
		{"group_con_lim", []string{"-c", "1000", "-g", "30000", "-n", "30", "-t", "100",
			"-check-grouplimit", groupTol, "-check-connlimit", connTol, "-check-stddev", stddevTol}},
		{"group_con_lim_drain", []string{"-c", "1000", "-g", "35000", "-n", "30", "-t", "100", "-G", "500",
			"-check-grouplimit", groupTol, "-check-connlimit", connTol, "-check-stddev", stddevTol}},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			args := append(append([]string{"-d", seconds}, redis...), sc.args...)
			runUndisturbed(t, 0, args...)
		})
	}
	code, _, errs := runRatelim(t, "-group-redis", srv.URL(), "-n", "2")
	if code != 2 {
		t.Errorf("-group-redis without -g exited %d, want 2; stderr %s", code, errs)
	}
}

// Counted libevent's way, with the group in Redis, the total and the
// shares are as exact as in the process (issue 12's ±30 B/s, ≤ 20 B/s).
// They were not, on a loaded machine, in about half the runs: a top-up
// held back past its tick ran as the next tick's lease, which charged the
// bytes used twice (TestLateTopUp in limiter/redisgroup).
func TestRedisLibeventWindow(t *testing.T) {
	srv := testredis.New(t)
	for _, sc := range []struct {
		name string
		args []string
	}{
		{"group_lim", []string{"-g", "30000"}},
		{"group_con_lim", []string{"-c", "1000", "-g", "30000", "-check-connlimit", "20"}},
	} {
		t.Run(sc.name, func(t *testing.T) {
			args := append([]string{"-libevent-window", "-d", seconds, "-n", "30", "-t", "100",
				"-group-redis", srv.URL(), "-check-grouplimit", "30", "-check-stddev", "20"}, sc.args...)
			runUndisturbed(t, 0, args...)
		})
	}
}

// A Redis that does not answer fails the run, naming the URL.
func TestRedisUnreachable(t *testing.T) {
	srv := testredis.New(t)
	srv.Stop()
	code, _, errs := runRatelim(t, "-group-redis", srv.URL(), "-g", "30000", "-n", "2", "-d", "1")
	if code != 1 || !contains(errs, srv.URL()[len("redis://"):]) {
		t.Errorf("ratelim with Redis down exited %d, stderr %q: want 1, naming the address", code, errs)
	}
}

func contains(s, sub string) bool { return len(sub) > 0 && strings.Contains(s, sub) }
