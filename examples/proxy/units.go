package main

import (
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// units maps the suffixes parseBytes accepts, lower-cased, to their
// multipliers: SI (kB = 1000) and IEC (KiB = 1024) names, and the bare
// letters K, M, G and T, which mean the binary units, as curl's
// --limit-rate reads them.
var units = map[string]int64{
	"":    1,
	"b":   1,
	"k":   1 << 10,
	"kb":  1e3,
	"kib": 1 << 10,
	"m":   1 << 20,
	"mb":  1e6,
	"mib": 1 << 20,
	"g":   1 << 30,
	"gb":  1e9,
	"gib": 1 << 30,
	"t":   1 << 40,
	"tb":  1e12,
	"tib": 1 << 40,
}

var errSize = errors.New("want a number of bytes such as 65536, 256KiB, 1.5MiB or 10MB")

// parseBytes reads a byte count with an optional unit: "65536", "256KiB",
// "1.5MiB", "10MB", "10 mb", "2k". Units are case-insensitive, and a
// trailing "/s" is allowed, so rates read naturally ("1MiB/s"). The result
// must be a whole number of bytes that fits an int64; negative numbers,
// exponents and anything else fail.
func parseBytes(s string) (int64, error) {
	t := strings.TrimSuffix(strings.TrimSpace(s), "/s")
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	mult, ok := units[unit]
	if !ok || num == "" || num == "." || strings.Count(num, ".") > 1 {
		return 0, fmt.Errorf("bad size %q: %w", s, errSize)
	}
	// big.Rat keeps "0.1MB" exact; a float would round it.
	r, ok := new(big.Rat).SetString(num)
	if !ok {
		return 0, fmt.Errorf("bad size %q: %w", s, errSize)
	}
	r.Mul(r, new(big.Rat).SetInt64(mult))
	if !r.IsInt() {
		return 0, fmt.Errorf("bad size %q: not a whole number of bytes", s)
	}
	if n := r.Num(); n.IsInt64() {
		return n.Int64(), nil
	}
	return 0, fmt.Errorf("bad size %q: too large", s)
}

// formatBytes writes n the way parseBytes reads it, in the largest binary
// unit that keeps it exact: 262144 → "256KiB", 1000 → "1000".
func formatBytes(n int64) string {
	for _, u := range []struct {
		name string
		size int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n != 0 && n%u.size == 0 {
			return fmt.Sprintf("%d%s", n/u.size, u.name)
		}
	}
	return fmt.Sprint(n)
}

// byteSize is a flag.Value holding a byte count parsed by parseBytes;
// zero means unset.
type byteSize int64

func (b *byteSize) String() string {
	if b == nil || *b == 0 {
		return "0"
	}
	return formatBytes(int64(*b))
}

func (b *byteSize) Set(s string) error {
	n, err := parseBytes(s)
	if err != nil {
		return err
	}
	*b = byteSize(n)
	return nil
}
