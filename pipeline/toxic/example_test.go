package toxic_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"syscall"
	"time"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/pipeline/toxic"
)

// A test breaks its own HTTP client's network: every connection the
// client dials goes through the toxics of one Set, which the test changes
// as it goes.
func ExampleWrapConn() {
	// snippet:toxic-wrapconn
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "pong")
	}))
	defer srv.Close()

	base := actor.NewBase()
	defer base.Close()
	set := new(toxic.Set)
	var d net.Dialer
	client := &http.Client{Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return toxic.WrapConn(base, c, set)
		},
	}}
	defer client.CloseIdleConnections()

	get := func() (time.Duration, error) {
		start := time.Now()
		resp, err := client.Get(srv.URL)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		_, err = io.ReadAll(resp.Body)
		return time.Since(start), err
	}

	// 50 ms on every response.
	set.Add(toxic.New("slow", toxic.Downstream, &toxic.Latency{Latency: 50}))
	took, err := get()
	fmt.Println("latency:", err, took >= 50*time.Millisecond)

	// The server resets the connection as soon as the request goes out.
	set.Remove("slow")
	set.Add(toxic.New("reset", toxic.Upstream, &toxic.ResetPeer{}))
	_, err = get()
	fmt.Println("reset:", errors.Is(err, syscall.ECONNRESET))
	// snippet:end

	// Output:
	// latency: <nil> true
	// reset: true
}

// A toxic is a stage: here a latency of 20 ms on what one end of a pair
// reads, in a filter like any other.
func ExampleNewFilter() {
	// snippet:toxic-stage
	base := actor.NewBase()
	defer base.Close()
	peer, near, _ := actor.NewPair(base, actor.CloseOnFree)

	set := new(toxic.Set)
	set.Add(toxic.New("slow", toxic.Downstream, &toxic.Latency{Latency: 20}))
	f, err := toxic.NewFilter(near, set, toxic.Downstream, actor.CloseOnFree)
	if err != nil {
		fmt.Println(err)
		return
	}
	in := f.In()
	start := time.Now()
	peer.Write([]byte("hello"))
	fmt.Printf("%s, after 20 ms or more: %v\n", <-in, time.Since(start) >= 20*time.Millisecond)

	// Removing the toxic lets bytes through at once, even on this open
	// connection.
	set.Remove("slow")
	peer.Write([]byte("world"))
	fmt.Printf("%s\n", <-in)
	// snippet:end

	// Output:
	// hello, after 20 ms or more: true
	// world
}
