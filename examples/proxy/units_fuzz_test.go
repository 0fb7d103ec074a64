package main

import (
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"
)

// FuzzParseBytes checks parseBytes, the parser of -rate, -group-rate,
// -min-share and the embedded upstream's /bytes/{size}, on any string: it
// never panics; what it refuses is an error (and a zero), never a value;
// what it accepts is a whole non-negative number of bytes equal to the
// number times its documented unit, which formatBytes writes back to the
// same value, and which rateConfig turns into a valid bucket.
func FuzzParseBytes(f *testing.F) {
	for _, s := range []string{
		"0", "65536", "256KiB", "512KiB", "1MiB", "2MiB", "1.5MiB", "10MB", "10 mb", "2k", "1kB",
		"3G", "2TiB", "1TB", "100B", "0.5KiB", "1MiB/s", " 7 ", "8388607TiB",
		"", "MiB", "-1", "1.2.3", ".", "1e6", "0x10", "1 MiBs", "1Mbit", "0.1B",
		"9999999999999PiB", "8388608TiB", "99999999999999999999", "9223372036854775807",
		"9223372036854775808", "1.", ".5KiB", "1/s", "/s", "１MiB", "1µB", "1\x00", "1KiB/s/s",
		"0." + strings.Repeat("0", 40) + "1TiB",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parseBytes(s)
		var b byteSize
		setErr := b.Set(s)
		if (err == nil) != (setErr == nil) || (err == nil && int64(b) != n) {
			t.Fatalf("byteSize.Set(%q) = %d, %v; parseBytes = %d, %v", s, b, setErr, n, err)
		}
		if err != nil {
			if n != 0 {
				t.Fatalf("parseBytes(%q) = %d with error %v; want 0", s, n, err)
			}
			if !strings.Contains(err.Error(), "bad size") {
				t.Fatalf("parseBytes(%q) error %q does not say it is a bad size", s, err)
			}
			return
		}
		if n < 0 {
			t.Fatalf("parseBytes(%q) = %d: negative", s, n)
		}
		// The oracle: the number and the unit, split here independently
		// of parseBytes, multiplied exactly.
		tr := strings.TrimSpace(s)
		tr = strings.TrimSuffix(tr, "/s")
		end := strings.LastIndexAny(tr, "0123456789.") + 1
		num, unit := tr[:end], strings.ToLower(strings.TrimSpace(tr[end:]))
		mult, ok := units[unit]
		if !ok || strings.TrimLeft(num, "0123456789.") != "" {
			t.Fatalf("parseBytes(%q) = %d, but %q is not a number and a unit", s, n, tr)
		}
		r, ok := new(big.Rat).SetString(num)
		if !ok {
			t.Fatalf("parseBytes(%q) = %d, but %q is not a number", s, n, num)
		}
		r.Mul(r, new(big.Rat).SetInt64(mult))
		if !r.IsInt() || r.Num().Cmp(big.NewInt(n)) != 0 {
			t.Fatalf("parseBytes(%q) = %d, want %s", s, n, r.RatString())
		}
		if back, err := parseBytes(formatBytes(n)); err != nil || back != n {
			t.Fatalf("parseBytes(formatBytes(%d) = %q) = %d, %v", n, formatBytes(n), back, err)
		}
		if n > 0 {
			c, err := rateConfig(n)
			if err != nil {
				t.Fatalf("rateConfig(%d) from %q: %v", n, s, err)
			}
			// The bucket's rate per second is n, to within rounding.
			perSec := new(big.Int).Mul(big.NewInt(c.ReadRate), big.NewInt(int64(time.Second/c.Tick)))
			diff := new(big.Int).Sub(perSec, big.NewInt(n))
			if diff.CmpAbs(big.NewInt(5)) > 0 {
				t.Fatalf("rateConfig(%d) = %d per %v: %s per second", n, c.ReadRate, c.Tick, perSec)
			}
		}
	})
}

// FuzzParseFlags feeds arbitrary values to the flags that take sizes,
// durations and addresses: parseFlags never panics, and what it accepts
// is consistent with what check promises (no negative timeouts, addresses
// in host:port form, a target with a port in range).
func FuzzParseFlags(f *testing.F) {
	f.Add("1MiB", "5m", "127.0.0.1:8080", "127.0.0.1:9000")
	f.Add("0", "0s", "8080", "localhost:80")
	f.Add("2MiB/s", "-1s", "[::1]:0", "[::1]:65535")
	f.Add("9999999999999PiB", "9223372036854775807ns", "99999", "host:0")
	f.Add("", "1h2m3.5s", ":", "a b:1")
	f.Add("512KiB", "1µs", "-1", "example.com:65536")
	f.Fuzz(func(t *testing.T, rate, dur, listen, target string) {
		args := []string{"-rate", rate, "-idle-timeout", dur, "-listen", listen, "-target", target}
		c, err := parseFlags(args, nil)
		if err != nil {
			if c == nil && errors.Is(err, errHelp) {
				t.Fatalf("parseFlags(%q) asked for help", args)
			}
			if err.Error() == "" {
				t.Fatalf("parseFlags(%q): empty error", args)
			}
			return
		}
		if c.rate < 0 || c.idleTimeout < 0 {
			t.Fatalf("parseFlags(%q) accepted rate %d, idle timeout %v", args, c.rate, c.idleTimeout)
		}
		if _, err := normaliseAddr(c.listen); err != nil {
			t.Fatalf("parseFlags(%q) accepted listen %q: %v", args, c.listen, err)
		}
		if c.target != "" {
			if _, port, err := splitTarget(c.target); err != nil || port < 1 || port > 65535 {
				t.Fatalf("parseFlags(%q) accepted target %q: port %d, %v", args, c.target, port, err)
			}
		}
		if c.rate > 0 {
			if _, err := rateConfig(int64(c.rate)); err != nil {
				t.Fatalf("parseFlags(%q) accepted rate %d that rateConfig refuses: %v", args, c.rate, err)
			}
		}
	})
}
