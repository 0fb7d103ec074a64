package toxic_test

import (
	"context"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/internal/testconn"
	"github.com/bevgo/bev/pipeline/toxic"
)

// rtts measures n one-byte round trips on c.
func rtts(b *testing.B, c net.Conn, n int) []time.Duration {
	out := make([]time.Duration, 0, n)
	p := []byte{1}
	for range n {
		start := time.Now()
		if _, err := c.Write(p); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, p); err != nil {
			b.Fatal(err)
		}
		out = append(out, time.Since(start))
	}
	slices.Sort(out)
	return out
}

func pct(s []time.Duration, p float64) time.Duration { return s[int(p*float64(len(s)-1))] }

// BenchmarkLatencyAccuracy: a 50 ms latency toxic on what a wrapped TCP
// connection reads, ping-pong with an echo server; reports what the
// toxic adds to the round trip at p50 and p99 (against the median round
// trip of the same wrapped connection before the toxic was added) in
// ms. Run with -benchtime 1000x.
func BenchmarkLatencyAccuracy(b *testing.B) {
	base := actor.NewBase()
	defer base.Close()
	raw, err := net.Dial("tcp", testconn.EchoServer(b))
	if err != nil {
		b.Fatal(err)
	}
	set := new(toxic.Set)
	c, err := toxic.WrapConn(base, raw, set)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	before := pct(rtts(b, c, 200), 0.5)
	set.Add(toxic.New("lat", toxic.Downstream, &toxic.Latency{Latency: 50}))
	b.ResetTimer()
	got := rtts(b, c, b.N)
	b.StopTimer()
	added := func(p float64) float64 { return float64(pct(got, p)-before) / 1e6 }
	b.ReportMetric(added(0.5), "p50-added-ms")
	b.ReportMetric(added(0.99), "p99-added-ms")
	b.ReportMetric(float64(before)/1e3, "base-rtt-µs")
}

// BenchmarkBandwidthAccuracy: a 1024 KB/s bandwidth toxic on what a
// wrapped TCP connection reads; an echo server returns 10 MiB. Reports
// the seconds it took and the rate in KB/s (1 KB = 1000 bytes, as
// toxiproxy's). Run with -benchtime 1x.
func BenchmarkBandwidthAccuracy(b *testing.B) {
	const total = 10 << 20
	base := actor.NewBase()
	defer base.Close()
	b.SetBytes(total)
	for b.Loop() {
		raw, err := net.Dial("tcp", testconn.EchoServer(b))
		if err != nil {
			b.Fatal(err)
		}
		set := new(toxic.Set)
		set.Add(toxic.New("bw", toxic.Downstream, &toxic.Bandwidth{Rate: 1024}))
		c, err := toxic.WrapConn(base, raw, set)
		if err != nil {
			b.Fatal(err)
		}
		go func() {
			c.Write(make([]byte, total))
			c.(interface{ CloseWrite() error }).CloseWrite()
		}()
		start := time.Now()
		n, err := io.Copy(io.Discard, c)
		took := time.Since(start)
		if n != total || err != nil {
			b.Fatalf("read %d bytes, %v", n, err)
		}
		c.Close()
		b.ReportMetric(took.Seconds(), "s")
		b.ReportMetric(float64(total)/took.Seconds()/1000, "KB/s")
	}
}

// BenchmarkLatencyMemory: 1000 pairs stream at full speed through a 1 s
// latency toxic, the reader's high watermark at 64 KiB and the writer's
// at 64 KiB; reports the largest a stage held (it must stay under the
// read high mark), and the process's peak RSS (VmHWM) per connection.
// Run with -benchtime 1x.
func BenchmarkLatencyMemory(b *testing.B) {
	const conns, high = 1000, 64 << 10
	for b.Loop() {
		base := actor.NewBase()
		set := new(toxic.Set)
		set.Add(toxic.New("lat", toxic.Downstream, &toxic.Latency{Latency: 1000}))
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		stages := make([]*toxic.Stage, conns)
		filters := make([]*actor.Bufferevent, conns)
		done := make(chan int64, conns)
		chunk := make([]byte, 16<<10)
		for i := range conns {
			peer, near, err := actor.NewPair(base, actor.CloseOnFree)
			if err != nil {
				b.Fatal(err)
			}
			st := set.NewStage(toxic.Downstream, toxic.StageConfig{Clock: base.Clock()})
			f, err := pipelineFilter(near, st)
			if err != nil {
				b.Fatal(err)
			}
			f.SetWatermark(actor.Read, 0, high)
			peer.SetWatermark(actor.Write, 0, high)
			stages[i], filters[i] = st, f
			go func() { // the writer, at full speed
				for peer.Send(ctx, chunk) == nil {
				}
			}()
			go func() { // the reader, as fast as the toxic allows
				var n int64
				in := f.In()
				for {
					select {
					case p := <-in:
						n += int64(len(p))
					case <-ctx.Done():
						done <- n
						return
					}
				}
			}()
		}
		maxHeld := 0
		for ctx.Err() == nil {
			for i, st := range stages {
				filters[i].Do(func(*actor.Session) { maxHeld = max(maxHeld, st.Buffered()) })
			}
			time.Sleep(100 * time.Millisecond)
		}
		var moved int64
		for range conns {
			moved += <-done
		}
		cancel()
		base.Close()
		b.ReportMetric(float64(maxHeld), "max-held-B")
		b.ReportMetric(float64(moved)/conns, "B/conn-moved")
		b.ReportMetric(float64(vmHWM())/conns, "peak-RSS-B/conn")
	}
}

// vmHWM is the process's peak RSS in bytes, from /proc/self/status.
func vmHWM() int64 {
	data, _ := os.ReadFile("/proc/self/status")
	for line := range strings.SplitSeq(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// BenchmarkStageProcess: one 100-byte chunk through a stage's Process, as
// each relayed read pays: with no toxic, with transparent ones (a 0 ms
// latency, a 0 bandwidth), and with a latency of 0 ± 1 ms jitter, which
// is not transparent (the chunk goes through the toxic and, due at once
// or not, the stage may arm its timer). The clock is the real one.
func BenchmarkStageProcess(b *testing.B) {
	for _, bc := range []struct {
		name   string
		toxics []toxic.Toxic
	}{
		{"none", nil},
		{"latency0", []toxic.Toxic{toxic.New("l", toxic.Downstream, &toxic.Latency{})}},
		{"latency0+bandwidth0", []toxic.Toxic{toxic.New("l", toxic.Downstream, &toxic.Latency{}),
			toxic.New("bw", toxic.Downstream, &toxic.Bandwidth{})}},
		{"jitter1ms", []toxic.Toxic{toxic.New("l", toxic.Downstream, &toxic.Latency{Jitter: 1})}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			set := newSet(b, bc.toxics...)
			st := set.NewStage(toxic.Downstream, toxic.StageConfig{})
			defer st.Close()
			var src, dst actor.Buffer
			p := make([]byte, 100)
			b.SetBytes(int64(len(p)))
			b.ReportAllocs()
			for b.Loop() {
				src.Write(p)
				if _, err := st.Process(&dst, &src, -1, actor.Normal); err != nil {
					b.Fatal(err)
				}
				dst.Reset()
			}
		})
	}
}
