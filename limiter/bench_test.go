package limiter_test

import (
	"testing"

	"github.com/bevgo/bev/limiter"
)

const chunk = 1024

func unlimited(tb testing.TB) *limiter.Config {
	return mustConfig(tb, limiter.Max, limiter.Max, limiter.Max, limiter.Max, limiter.DefaultTick)
}

// step is what an I/O loop does per operation when it need not wait.
func step(tb testing.TB, m limiter.Meter) {
	n := m.Allow(limiter.Read)
	if n == 0 {
		tb.Fatalf("Allow(Read) = 0 on an unlimited config: %+v", m)
	}
	m.Consume(limiter.Read, int(min(n, chunk)))
}

func BenchmarkBucket(b *testing.B) {
	bk := mustBucket(b, unlimited(b))
	b.ReportAllocs()
	b.SetBytes(chunk)
	for b.Loop() {
		step(b, bk)
	}
}

func BenchmarkGroup(b *testing.B) {
	g := mustGroup(b, unlimited(b))
	b.ReportAllocs()
	b.SetBytes(chunk)
	b.RunParallel(func(pb *testing.PB) {
		m, err := g.Join()
		if err != nil {
			b.Errorf("Join() = %v", err)
			return
		}
		defer m.Leave()
		for pb.Next() {
			step(b, m)
		}
	})
}

func TestAllocs(t *testing.T) {
	bk := mustBucket(t, unlimited(t))
	if n := testing.AllocsPerRun(1000, func() { step(t, bk) }); n != 0 {
		t.Errorf("Bucket Allow+Consume allocates %v times, want 0", n)
	}
	g := mustGroup(t, unlimited(t))
	m := join(t, g, 4)[0]
	if n := testing.AllocsPerRun(1000, func() { step(t, m) }); n != 0 {
		t.Errorf("Member Allow+Consume allocates %v times, want 0", n)
	}
}
