package limiter_test

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/bevgo/bev/limiter"
)

// TestNewConfigSeconds reproduces libevent's regress tests 37
// (bufferevent_ratelimit_div_by_zero) and 38 (bufferevent_ratelimit_overflow)
// literally, with the tick as a timeval.
func TestNewConfigSeconds(t *testing.T) {
	tests := []struct {
		name      string
		sec, usec int64
		ok        bool
	}{
		{"case 37 zero tick", 0, 0, false},
		{"case 38 LONG_MAX", math.MaxInt64, 0, false},
		{"case 38 UINT_MAX-1", math.MaxUint32 - 1, 0, false},
		{"case 38 INT_MAX", math.MaxInt32, 0, false},
		{"case 38 INT_MAX/1000+1", math.MaxInt32/1000 + 1, 0, false},
		{"case 38 INT_MAX/1000", math.MaxInt32 / 1000, 0, true},
		{"case 38 INT_MAX/1000-1", math.MaxInt32/1000 - 1, 0, true},
		{"negative seconds", -1, 0, false},
		{"999us", 0, 999, false},
		{"1000us", 0, 1000, true},
		{"usec out of range", 0, 1000000, false},
		{"negative usec", 1, -1, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := limiter.NewConfigSeconds(1, 1, 1, 1, tc.sec, tc.usec)
			if tc.ok {
				if err != nil {
					t.Fatalf("NewConfigSeconds(1, 1, 1, 1, %d, %d) = %v, want success", tc.sec, tc.usec, err)
				}
				want := time.Duration(tc.sec)*time.Second + time.Duration(tc.usec/1000)*time.Millisecond
				if c.Tick != want {
					t.Errorf("NewConfigSeconds(..., %d, %d).Tick = %v, want %v", tc.sec, tc.usec, c.Tick, want)
				}
				return
			}
			if !errors.Is(err, limiter.ErrInvalidConfig) || c != nil {
				t.Fatalf("NewConfigSeconds(1, 1, 1, 1, %d, %d) = %v, %v, want nil, ErrInvalidConfig", tc.sec, tc.usec, c, err)
			}
		})
	}
}

func TestNewConfig(t *testing.T) {
	const sec = time.Second
	tests := []struct {
		name           string
		rr, rb, wr, wb int64
		tick           time.Duration
		ok             bool
		wantTick       time.Duration
	}{
		{"valid", 100, 400, 200, 800, 100 * time.Millisecond, true, 100 * time.Millisecond},
		{"default tick", 1, 1, 1, 1, limiter.DefaultTick, true, time.Second},
		{"rate equals burst", 5, 5, 5, 5, sec, true, sec},
		{"everything Max", limiter.Max, limiter.Max, limiter.Max, limiter.Max, sec, true, sec},
		{"zero tick", 1, 1, 1, 1, 0, false, 0},
		{"negative tick", 1, 1, 1, 1, -sec, false, 0},
		{"sub-ms tick", 1, 1, 1, 1, 999 * time.Microsecond, false, 0},
		{"sub-ms part dropped", 1, 1, 1, 1, 1500 * time.Microsecond, true, time.Millisecond},
		{"UINT_MAX-1 seconds", 1, 1, 1, 1, (math.MaxUint32 - 1) * sec, false, 0},
		{"INT_MAX seconds", 1, 1, 1, 1, math.MaxInt32 * sec, false, 0},
		{"INT_MAX/1000+1 seconds", 1, 1, 1, 1, (math.MaxInt32/1000 + 1) * sec, false, 0},
		{"INT_MAX/1000 seconds", 1, 1, 1, 1, math.MaxInt32 / 1000 * sec, true, math.MaxInt32 / 1000 * sec},
		{"INT_MAX/1000 seconds and a bit", 1, 1, 1, 1, math.MaxInt32/1000*sec + 999*time.Millisecond, true, math.MaxInt32/1000*sec + 999*time.Millisecond},
		{"read rate 0", 0, 1, 1, 1, sec, false, 0},
		{"write rate 0", 1, 1, 0, 1, sec, false, 0},
		{"negative read rate", -1, 1, 1, 1, sec, false, 0},
		{"negative write rate", 1, 1, -5, 1, sec, false, 0},
		{"read rate above burst", 2, 1, 1, 1, sec, false, 0},
		{"write rate above burst", 1, 1, 10, 9, sec, false, 0},
		{"negative burst", 1, -1, 1, 1, sec, false, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := limiter.NewConfig(tc.rr, tc.rb, tc.wr, tc.wb, tc.tick)
			if !tc.ok {
				if !errors.Is(err, limiter.ErrInvalidConfig) || c != nil {
					t.Fatalf("NewConfig(%d, %d, %d, %d, %v) = %v, %v, want nil, ErrInvalidConfig", tc.rr, tc.rb, tc.wr, tc.wb, tc.tick, c, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewConfig(%d, %d, %d, %d, %v) = %v, want success", tc.rr, tc.rb, tc.wr, tc.wb, tc.tick, err)
			}
			want := limiter.Config{ReadRate: tc.rr, ReadBurst: tc.rb, WriteRate: tc.wr, WriteBurst: tc.wb, Tick: tc.wantTick}
			if *c != want {
				t.Errorf("NewConfig(%d, %d, %d, %d, %v) = %+v, want %+v", tc.rr, tc.rb, tc.wr, tc.wb, tc.tick, *c, want)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  *limiter.Config
		ok   bool
	}{
		{"nil", nil, false},
		{"zero value", &limiter.Config{}, false},
		{"zero tick means default", &limiter.Config{ReadRate: 1, ReadBurst: 1, WriteRate: 1, WriteBurst: 1}, true},
		{"sub-ms tick", &limiter.Config{ReadRate: 1, ReadBurst: 1, WriteRate: 1, WriteBurst: 1, Tick: time.Microsecond}, false},
		{"1.5ms tick", &limiter.Config{ReadRate: 1, ReadBurst: 1, WriteRate: 1, WriteBurst: 1, Tick: 1500 * time.Microsecond}, true},
		{"negative tick", &limiter.Config{ReadRate: 1, ReadBurst: 1, WriteRate: 1, WriteBurst: 1, Tick: -time.Second}, false},
		{"huge tick", &limiter.Config{ReadRate: 1, ReadBurst: 1, WriteRate: 1, WriteBurst: 1, Tick: math.MaxInt64}, false},
		{"rate above burst", &limiter.Config{ReadRate: 1, ReadBurst: 1, WriteRate: 3, WriteBurst: 2}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.ok && err != nil {
				t.Errorf("Validate(%+v) = %v, want nil", tc.cfg, err)
			}
			if !tc.ok && !errors.Is(err, limiter.ErrInvalidConfig) {
				t.Errorf("Validate(%+v) = %v, want ErrInvalidConfig", tc.cfg, err)
			}
		})
	}
}

func TestDirString(t *testing.T) {
	tests := []struct {
		d    limiter.Dir
		want string
	}{
		{limiter.Read, "read"},
		{limiter.Write, "write"},
		{limiter.Dir(7), "Dir(7)"},
	}
	for _, tc := range tests {
		if got := tc.d.String(); got != tc.want {
			t.Errorf("Dir(%d).String() = %q, want %q", int(tc.d), got, tc.want)
		}
	}
}
