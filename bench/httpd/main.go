// Command httpd is the HTTP server bench/proxy.sh and bench/proxymem.sh put
// behind the relays when nginx is not installed: GET / answers 100 bytes,
// GET /mid 1 MiB and GET /big -big bytes. It keeps connections alive, as nginx
// does.
//
//	usage: httpd -listen 127.0.0.1:PORT [-big BYTES]
package main

import (
	"bytes"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strconv"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "`address` to serve on")
	big := flag.Int64("big", 256<<20, "`bytes` GET /big answers")
	flag.Parse()
	small := bytes.Repeat([]byte("x"), 99)
	small = append(small, '\n')
	block := make([]byte, 64<<10)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Length", "100")
		w.Write(small)
	})
	stream := func(size int64) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
			for left := size; left > 0; {
				n := min(left, int64(len(block)))
				if _, err := w.Write(block[:n]); err != nil {
					return
				}
				left -= n
			}
		}
	}
	mux.HandleFunc("GET /mid", stream(1<<20))
	mux.HandleFunc("GET /big", stream(*big))
	srv := &http.Server{Addr: *listen, Handler: mux}
	if err := srv.ListenAndServe(); err != nil {
		fmt.Fprintln(os.Stderr, "httpd:", err)
		os.Exit(1)
	}
}
