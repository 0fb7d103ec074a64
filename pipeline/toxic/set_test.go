package toxic_test

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/pipeline/toxic"
)

// Tests of set.go: a Set changed under open connections, and its errors.

// TestChangesWhileOpen: toxics added to an open connection act on its
// next chunk; a removed one releases what it held at once, in order,
// handing it to the toxic after it.
func TestChangesWhileOpen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, new(toxic.Set))
		in := r.f.In()
		start := time.Now()
		must(t, r.peer.Write([]byte("0")))
		if p := <-in; string(p) != "0" || time.Since(start) != 0 {
			t.Fatalf("got %q after %v without toxics", p, time.Since(start))
		}
		must(t, r.set.Add(toxic.New("a", toxic.Downstream, &toxic.Latency{Latency: 60 * 60 * 1000})))
		must(t, r.set.Add(toxic.New("b", toxic.Downstream, &toxic.Latency{Latency: 30 * 60 * 1000})))
		must(t, r.peer.Write([]byte("1"))) // a until 1h, then b until 1h30
		time.Sleep(65 * time.Minute)       // "1" is in b
		must(t, r.peer.Write([]byte("2"))) // a until 2h05
		time.Sleep(5 * time.Minute)        // 1h10
		must(t, r.set.Remove("a"))         // "2" goes to b: until 1h40
		time.Sleep(10 * time.Minute)       // 1h20
		synctest.Wait()
		select {
		case p := <-in:
			t.Fatalf("got %q at %v, before b's delay", p, time.Since(start))
		default:
		}
		must(t, r.set.Remove("b")) // both released now, in order
		got, err := collect(t, r.f, 2, time.Second)
		must(t, err)
		if string(joined(got)) != "12" || got[len(got)-1].at.Sub(start) != 80*time.Minute {
			t.Fatalf("got %q at %v, want %q at 1h20m", joined(got), got[len(got)-1].at.Sub(start), "12")
		}
		// An update takes effect on the next chunk.
		must(t, r.set.Add(toxic.New("c", toxic.Downstream, &toxic.Latency{Latency: 10})))
		must(t, r.set.Update(toxic.New("c", toxic.Downstream, &toxic.Latency{Latency: 20})))
		t0 := time.Now()
		must(t, r.peer.Write([]byte("3")))
		if p := <-in; string(p) != "3" || time.Since(t0) != 20*time.Millisecond {
			t.Fatalf("got %q after %v, want 20ms", p, time.Since(t0))
		}
	})
}

func TestSetErrors(t *testing.T) {
	s := new(toxic.Set)
	for _, tc := range []struct {
		name string
		t    toxic.Toxic
		want error
	}{
		{"empty name", toxic.New("", toxic.Upstream, &toxic.Latency{}), toxic.ErrInvalid},
		{"negative latency", toxic.New("x", toxic.Upstream, &toxic.Latency{Latency: -1}), toxic.ErrInvalid},
		{"negative jitter", toxic.New("x", toxic.Upstream, &toxic.Latency{Jitter: -1}), toxic.ErrInvalid},
		{"toxicity", toxic.Toxic{Name: "x", Toxicity: 1.5, Kind: &toxic.Latency{}}, toxic.ErrInvalid},
		{"stream", toxic.Toxic{Name: "x", Stream: 7, Toxicity: 1, Kind: &toxic.Latency{}}, toxic.ErrInvalid},
		{"no kind", toxic.New("x", toxic.Upstream, nil), toxic.ErrInvalid},
		{"slicer zero", toxic.New("x", toxic.Upstream, &toxic.Slicer{}), toxic.ErrInvalid},
		{"slicer variation", toxic.New("x", toxic.Upstream, &toxic.Slicer{AverageSize: 4, SizeVariation: 4}), toxic.ErrInvalid},
		{"bandwidth", toxic.New("x", toxic.Upstream, &toxic.Bandwidth{Rate: -1}), toxic.ErrInvalid},
		{"limit", toxic.New("x", toxic.Upstream, &toxic.LimitData{Bytes: -1}), toxic.ErrInvalid},
	} {
		if err := s.Add(tc.t); !errors.Is(err, tc.want) {
			t.Errorf("%s: Add = %v, want %v", tc.name, err, tc.want)
		}
	}
	must(t, s.Add(toxic.New("x", toxic.Upstream, &toxic.Latency{})))
	if err := s.Add(toxic.New("x", toxic.Upstream, &toxic.Latency{})); !errors.Is(err, toxic.ErrExists) {
		t.Errorf("duplicate Add = %v, want ErrExists", err)
	}
	if err := s.Remove("nope"); !errors.Is(err, toxic.ErrNotFound) {
		t.Errorf("Remove(unknown) = %v, want ErrNotFound", err)
	}
	if err := s.Update(toxic.New("x", toxic.Downstream, &toxic.Latency{})); !errors.Is(err, toxic.ErrInvalid) {
		t.Errorf("Update changing stream = %v, want ErrInvalid", err)
	}
	if _, err := toxic.NewKind("nope"); !errors.Is(err, toxic.ErrInvalid) {
		t.Errorf("NewKind(nope) = %v, want ErrInvalid", err)
	}
	if got := fmt.Sprint(s.List()[0].Kind.Type()); got != "latency" {
		t.Errorf("List()[0] type %q", got)
	}
}

// TestNilSet: a nil *Set is an empty set that cannot change. Its reads
// and its stages see no toxic (a stage passes everything on), Clear does
// nothing, and each change fails with an error wrapping ErrInvalid that
// says the set is nil; NewFilter and WrapConn refuse it. Each of these
// used to panic on the nil pointer.
func TestNilSet(t *testing.T) {
	var s *toxic.Set
	lat := toxic.New("lat", toxic.Downstream, &toxic.Latency{Latency: 100})
	for name, err := range map[string]error{
		"Add":    s.Add(lat),
		"Update": s.Update(lat),
		"Remove": s.Remove("lat"),
	} {
		if !errors.Is(err, toxic.ErrInvalid) || !strings.Contains(err.Error(), "nil set") ||
			strings.Count(err.Error(), "toxic:") != 1 {
			t.Errorf("%s on a nil set = %v, want ErrInvalid saying nil set, with one prefix", name, err)
		}
	}
	s.Clear()
	if got, ok := s.Get("lat"); ok || got != (toxic.Toxic{}) {
		t.Errorf("Get on a nil set = %+v, %v; want none", got, ok)
	}
	if l := s.List(); l == nil || len(l) != 0 {
		t.Errorf("List on a nil set = %#v, want an empty slice", l)
	}

	// Its stages pass everything on, at once, and close.
	in, out := s.NewStages(nil, toxic.Downstream)
	single := s.NewStage(toxic.Upstream, toxic.StageConfig{})
	for i, st := range []*toxic.Stage{in, out, single} {
		var dst, src actor.Buffer
		src.WriteString("through a nil set")
		if _, err := st.Process(&dst, &src, -1, actor.Normal); err != nil {
			t.Errorf("stage %d: Process: %v", i, err)
		}
		if got := string(dst.Pullup(-1)); got != "through a nil set" || src.Len() != 0 {
			t.Errorf("stage %d passed %q, left %d bytes; want all passed", i, got, src.Len())
		}
		if !st.Passes() || st.Buffered() != 0 {
			t.Errorf("stage %d: Passes %v, Buffered %d; want true, 0", i, st.Passes(), st.Buffered())
		}
		must(t, st.Close())
	}

	if _, err := toxic.NewFilter(nil, s, toxic.Downstream, 0); !errors.Is(err, toxic.ErrInvalid) {
		t.Errorf("NewFilter with a nil set = %v, want ErrInvalid", err)
	}
	c1, c2 := net.Pipe()
	defer c1.Close()
	defer c2.Close()
	if _, err := toxic.WrapConn(nil, c1, s); !errors.Is(err, toxic.ErrInvalid) {
		t.Errorf("WrapConn with a nil set = %v, want ErrInvalid", err)
	}
}
