package toxic_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/pipeline"
	"github.com/bevgo/bev/pipeline/toxic"
)

// stepClock is the clock of a synctest bubble whose timers never fire on
// their own: it records the armed deadline, and the fuzz target moves the
// bubble's time to it (a sleep, in virtual time) and calls the stage
// itself, so no goroutine runs. The time is the bubble's time.Now, which
// the bandwidth toxic's bucket reads too, through this clock.
type stepClock struct {
	at time.Time // the armed timer's deadline; zero: none
}

func (c *stepClock) Now() time.Time { return time.Now() }
func (c *stepClock) AfterFunc(d time.Duration, _ func()) actor.Timer {
	c.at = time.Now().Add(d)
	return stepTimer{c}
}

type stepTimer struct{ c *stepClock }

func (t stepTimer) Reset(d time.Duration) { t.c.at = time.Now().Add(d) }
func (t stepTimer) Stop()                 { t.c.at = time.Time{} }

// decodeToxic builds a toxic from toxiproxy's JSON fields as the proxy's
// REST API does (examples/proxy/api.go): the type names the kind, the
// attributes are decoded into it refusing unknown fields, and Validate
// checks the whole.
func decodeToxic(typ, stream string, toxicity float64, attrs []byte) (toxic.Toxic, error) {
	s, err := toxic.ParseStream(stream)
	if err != nil {
		return toxic.Toxic{}, err
	}
	kind, err := toxic.NewKind(typ)
	if err != nil {
		return toxic.Toxic{}, err
	}
	if len(attrs) > 0 && string(attrs) != "null" {
		dec := json.NewDecoder(bytes.NewReader(attrs))
		dec.DisallowUnknownFields()
		if err := dec.Decode(kind); err != nil {
			return toxic.Toxic{}, errJSON
		}
	}
	t := toxic.Toxic{Name: "fuzz", Stream: s, Toxicity: toxicity, Kind: kind}
	return t, t.Validate()
}

var errJSON = errors.New("attributes are not the kind's JSON")

// FuzzToxic decodes a toxic from its JSON attributes, validates it, and
// runs what Validate accepts as a stage on a fake clock: nothing panics;
// every refusal wraps ErrInvalid; the stage passes on a prefix of what it
// took, never more; and a toxic applied with toxicity 1 acts no earlier
// than its attributes say (a latency's least delay, a timeout's and a
// reset_peer's timeout, a bandwidth's rate), however large they are.
func FuzzToxic(f *testing.F) {
	for _, s := range []struct {
		typ, attrs string
	}{
		{"latency", `{"latency":100,"jitter":10}`},
		{"latency", `{"latency":0}`},
		{"latency", `{"latency":9223372036854,"jitter":0}`},
		{"latency", `{"latency":1,"jitter":9223372036854775807}`},
		{"latency", `{"latency":9300000000000}`},
		{"latency", `{"latency":9223372036854775807,"jitter":9223372036854775807}`},
		{"bandwidth", `{"rate":92233720368547758}`},
		{"slicer", `{"average_size":1,"delay":9300000000000000}`},
		{"slow_close", `{"delay":9300000000000}`},
		{"bandwidth", `{"rate":100}`},
		{"bandwidth", `{"rate":9223372036854775807}`},
		{"slow_close", `{"delay":1000}`},
		{"timeout", `{"timeout":5000}`},
		{"timeout", `{"timeout":9223372036854775807}`},
		{"reset_peer", `{"timeout":0}`},
		{"reset_peer", `{"timeout":9300000000000}`},
		{"slicer", `{"average_size":16,"size_variation":4,"delay":10}`},
		{"slicer", `{"average_size":9223372036854775807,"size_variation":9223372036854775806}`},
		{"limit_data", `{"bytes":5}`},
		{"limit_data", `{"bytes":-1}`},
		{"latency", `{"latency":"1s"}`},
		{"latency", `{"latency":1e400}`},
		{"latency", `{"lat":1}`},
		{"nosuch", `{}`},
		{"latency", `null`},
		{"", ``},
	} {
		f.Add(s.typ, "downstream", 1.0, []byte(s.attrs), []byte("hello, toxic world"), int16(-1))
	}
	f.Add("latency", "upstream", 0.5, []byte(`{"latency":10}`), []byte("x"), int16(3))
	f.Add("latency", "sideways", 1.0, []byte(`{}`), []byte("x"), int16(3))
	f.Add("timeout", "upstream", math.NaN(), []byte(`{}`), []byte("x"), int16(3))
	f.Fuzz(func(t *testing.T, typ, stream string, toxicity float64, attrs, data []byte, limit int16) {
		tx, err := decodeToxic(typ, stream, toxicity, attrs)
		if errors.Is(err, errJSON) {
			return
		}
		if err != nil {
			if !errors.Is(err, toxic.ErrInvalid) {
				t.Fatalf("toxic %q %s %s: error %v does not wrap ErrInvalid", typ, stream, attrs, err)
			}
			return
		}
		set := new(toxic.Set)
		if err := set.Add(tx); err != nil {
			t.Fatalf("Set.Add of a valid toxic %q %s: %v", typ, attrs, err)
		}
		synctest.Test(t, func(t *testing.T) { runToxic(t, set, tx, data, limit) })
	})
}

// horizon is how far runToxic moves the time: a synctest bubble's time
// starts in 2000 and cannot go past 2262, where its nanoseconds end (and
// the runtime fails on a sleep beyond).
const horizon = 200 * 365 * 24 * time.Hour

// runToxic runs data through a stage of set's toxic tx, in up to 24
// calls, moving the time to each deadline the stage arms, and checks what
// comes out against tx's attributes. It runs in a synctest bubble.
func runToxic(t *testing.T, set *toxic.Set, tx toxic.Toxic, data []byte, limit int16) {
	typ, attrs := tx.Kind.Type(), tx.Kind
	clk := &stepClock{}
	start := time.Now()
	st := set.NewStage(tx.Stream, toxic.StageConfig{Clock: clk, Rand: rand.New(rand.NewPCG(1, 2))})
	defer func() {
		st.Close()
		if n := toxic.Watched(set); n != 0 {
			t.Errorf("after Close the set still watches %d stages", n)
		}
	}()
	lim := int(limit)
	if lim < 0 {
		lim = -1
	}
	var src, dst actor.Buffer
	src.Write(data)
	var out []byte
	var endAt time.Duration = -1 // when the stage failed, since start
	var firstOut, lastOut time.Duration = -1, -1
	var released time.Duration = -1 // when the stage let the end go, since start
	for step := range 24 {
		mode := actor.Normal
		if step > 0 && src.Len() == 0 {
			mode = actor.Finished
		}
		res, err := st.Process(&dst, &src, lim, mode)
		if mode == actor.Finished && released < 0 && err == nil && st.Buffered() == 0 {
			released = time.Since(start) // the stream's end may go on
		}
		if n := dst.Len(); n > 0 {
			if firstOut < 0 {
				firstOut = time.Since(start)
			}
			lastOut = time.Since(start)
			p := make([]byte, n)
			dst.Read(p)
			out = append(out, p...)
		}
		if res == pipeline.Failed || err != nil {
			if res != pipeline.Failed || !(errors.Is(err, toxic.ErrClosed) || errors.Is(err, toxic.ErrReset)) {
				t.Fatalf("step %d: Process = %v, %v", step, res, err)
			}
			endAt = time.Since(start)
			break
		}
		if now := time.Now(); !clk.at.IsZero() && clk.at.After(now) {
			if clk.at.Sub(start) > horizon {
				break // the toxic acts later than the bubble's time can go
			}
			time.Sleep(clk.at.Sub(now)) // virtual time: the bubble's
		} else if res == pipeline.NeedMore && src.Len() == 0 && st.Buffered() == 0 {
			break
		}
	}
	if !bytes.HasPrefix(data, out) {
		t.Fatalf("%s %s passed on %q, not a prefix of %q", typ, attrs, out, data)
	}
	if tx.Toxicity != 1 {
		return // the roll may have left the toxic out
	}
	// atLeast reports whether elapsed is at least ms milliseconds,
	// or the largest Duration (about 292 years) where they do not
	// fit one, as the toxics read their attributes.
	atLeast := func(elapsed time.Duration, ms int64) bool {
		want := time.Duration(math.MaxInt64)
		if ms <= math.MaxInt64/int64(time.Millisecond) {
			want = time.Duration(ms) * time.Millisecond
		}
		return ms <= 0 || elapsed >= want
	}
	switch k := tx.Kind.(type) {
	case *toxic.Latency:
		if firstOut >= 0 && !atLeast(firstOut, k.Latency-k.Jitter) {
			t.Fatalf("latency %+v: data passed after %v", *k, firstOut)
		}
	case *toxic.Timeout:
		if endAt >= 0 && (k.Timeout == 0 || !atLeast(endAt, k.Timeout)) {
			t.Fatalf("timeout %+v: closed after %v", *k, endAt)
		}
	case *toxic.ResetPeer:
		if endAt >= 0 && !atLeast(endAt, k.Timeout) {
			t.Fatalf("reset_peer %+v: reset after %v", *k, endAt)
		}
	case *toxic.SlowClose:
		if released >= 0 && !atLeast(released, k.Delay) {
			t.Fatalf("slow_close %+v: end let go after %v", *k, released)
		}
	case *toxic.Slicer:
		// More than one piece: the last waits the delay after the first.
		us := int64(k.Delay)
		want := time.Duration(math.MaxInt64)
		if us <= math.MaxInt64/int64(time.Microsecond) {
			want = time.Duration(us) * time.Microsecond
		}
		if lim < 0 && len(data) > k.AverageSize+k.SizeVariation && bytes.Equal(out, data) && lastOut < want {
			t.Fatalf("slicer %+v: all %d bytes passed after %v", *k, len(data), lastOut)
		}
	case *toxic.LimitData:
		if int64(len(out)) > k.Bytes {
			t.Fatalf("limit_data %+v: passed %d bytes", *k, len(out))
		}
	case *toxic.Bandwidth:
		// The bucket starts empty and fills every 100 ms: by
		// elapsed, at most rate KB/s for elapsed, and at least a
		// byte per tick.
		if k.Rate > 0 && len(out) > 0 {
			elapsed := time.Since(start)
			allowed := float64(k.Rate) * 1000 * (elapsed.Seconds() + 0.1)
			ticks := float64(elapsed/(100*time.Millisecond) + 1)
			if float64(len(out)) > max(allowed, ticks)+1 {
				t.Fatalf("bandwidth %+v: %d bytes in %v", *k, len(out), elapsed)
			}
		}
		// At least 1 KB/s is 100 bytes a tick: a short chunk has
		// passed whole by the first tick, whatever the rate.
		if k.Rate > 0 && lim < 0 && len(data) <= 100 && (!bytes.Equal(out, data) || lastOut > 100*time.Millisecond) {
			t.Fatalf("bandwidth %+v: %d of %d bytes, the last after %v", *k, len(out), len(data), lastOut)
		}
	}
}
