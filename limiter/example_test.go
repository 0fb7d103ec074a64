package limiter_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bevgo/bev/limiter"
)

// The tick in these examples is the longest there is, so that no refill
// falls between two lines of output.
const longTick = 2147483 * time.Second

func ExampleNewConfig() {
	_, err := limiter.NewConfig(1, 1, 1, 1, 0)
	fmt.Println(errors.Is(err, limiter.ErrInvalidConfig))
	_, err = limiter.NewConfig(100, 50, 1, 1, limiter.DefaultTick)
	fmt.Println(err)
	cfg, err := limiter.NewConfig(100, 400, 100, 400, 1500*time.Microsecond)
	fmt.Println(cfg.Tick, err)
	// Output:
	// true
	// limiter: invalid config: read rate 100 is above its burst 50
	// 1ms <nil>
}

func ExampleBucket() {
	cfg, err := limiter.NewConfig(100, 400, 100, 400, longTick)
	if err != nil {
		panic(err)
	}
	b, err := limiter.NewBucket(cfg)
	if err != nil {
		panic(err)
	}
	fmt.Println(b.Allow(limiter.Read)) // a new bucket starts at the rate
	b.Consume(limiter.Read, 250)       // one operation may overdraw it
	fmt.Println(b.Limit(limiter.Read), b.Allow(limiter.Read))
	b.Decrement(limiter.Read, -1000) // adding tokens may pass the burst
	fmt.Println(b.Limit(limiter.Read))
	// Output:
	// 100
	// -150 0
	// 850
}

func ExampleGroup() {
	cfg, err := limiter.NewConfig(3000, 12000, 3000, 12000, longTick)
	if err != nil {
		panic(err)
	}
	g, err := limiter.NewGroup(cfg)
	if err != nil {
		panic(err)
	}
	a, _ := g.Join()
	b, _ := g.Join()
	c, _ := g.Join()
	fmt.Println(a.Allow(limiter.Write)) // 3000 shared by three
	a.Consume(limiter.Write, 1000)
	fmt.Println(a.Allow(limiter.Write)) // a has had its share this tick
	b.Consume(limiter.Write, 1000)
	c.Consume(limiter.Write, 1000)
	fmt.Println(g.Limit(limiter.Write))

	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	err = a.Wait(ctx, limiter.Write) // the next refill is far away
	fmt.Println(errors.Is(err, context.DeadlineExceeded))

	for _, m := range []*limiter.Member{a, b, c} {
		m.Leave()
	}
	fmt.Println(g.Totals())
	fmt.Println(g.Close())
	// Output:
	// 1000
	// 0
	// 0
	// true
	// 0 3000
	// <nil>
}
