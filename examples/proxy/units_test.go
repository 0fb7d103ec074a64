package main

import (
	"errors"
	"math"
	"testing"
)

func TestParseBytes(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true},
		{"65536", 65536, true},
		{"256KiB", 256 << 10, true},
		{"1MiB", 1 << 20, true},
		{"1.5MiB", 3 << 19, true},
		{"10MB", 10e6, true},
		{"10mb", 10e6, true},
		{"10 MB", 10e6, true},
		{"2k", 2048, true},
		{"2K", 2048, true},
		{"1kB", 1000, true},
		{"1GiB", 1 << 30, true},
		{"3G", 3 << 30, true},
		{"2TiB", 2 << 40, true},
		{"1TB", 1e12, true},
		{"100B", 100, true},
		{"0.5KiB", 512, true},
		{"1MiB/s", 1 << 20, true},
		{" 7 ", 7, true},
		{"8388607TiB", 8388607 << 40, true},
		{"", 0, false},
		{"MiB", 0, false},
		{"-1", 0, false},
		{"1.2.3", 0, false},
		{".", 0, false},
		{"1e6", 0, false},
		{"0x10", 0, false},
		{"1 MiBs", 0, false},
		{"1Mbit", 0, false},
		{"0.1B", 0, false},
		{"1.0001KiB", 0, false},
		{"8388608TiB", 0, false},
		{"99999999999999999999", 0, false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseBytes(tc.in)
			if (err == nil) != tc.ok || got != tc.want {
				t.Errorf("parseBytes(%q) = %d, %v; want %d, ok %v", tc.in, got, err, tc.want, tc.ok)
			}
		})
	}
}

func TestParseBytesError(t *testing.T) {
	if _, err := parseBytes("ten"); !errors.Is(err, errSize) {
		t.Errorf("parseBytes(%q) error = %v, want one wrapping errSize", "ten", err)
	}
}

func TestFormatBytes(t *testing.T) {
	for _, tc := range []struct {
		in   int64
		want string
	}{
		{0, "0"}, {1000, "1000"}, {1024, "1KiB"}, {256 << 10, "256KiB"}, {3 << 19, "1536KiB"},
		{1 << 20, "1MiB"}, {5 << 30, "5GiB"}, {1 << 40, "1TiB"},
	} {
		got := formatBytes(tc.in)
		if got != tc.want {
			t.Errorf("formatBytes(%d) = %q, want %q", tc.in, got, tc.want)
		}
		if back, err := parseBytes(got); err != nil || back != tc.in {
			t.Errorf("parseBytes(formatBytes(%d)) = %d, %v", tc.in, back, err)
		}
	}
}

func TestRateConfig(t *testing.T) {
	for _, tc := range []struct {
		rate, perTick int64
		tickMS        int64
	}{
		{1 << 20, 104858, 100}, {1000, 100, 100}, {999, 999, 1000}, {1, 1, 1000},
		{math.MaxInt64, math.MaxInt64/10 + 1, 100}, // found by FuzzParseBytes: (rate+5)/10 overflowed
	} {
		c, err := rateConfig(tc.rate)
		if err != nil {
			t.Fatalf("rateConfig(%d): %v", tc.rate, err)
		}
		if c.ReadRate != tc.perTick || c.WriteBurst != tc.perTick || c.Tick.Milliseconds() != tc.tickMS {
			t.Errorf("rateConfig(%d) = %+v, want %d per %d ms", tc.rate, c, tc.perTick, tc.tickMS)
		}
	}
}
