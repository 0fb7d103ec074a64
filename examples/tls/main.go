// TLS is a TLS echo server and client on bev, in one program, with a
// self-signed certificate it makes at start.
//
// Run it with
//
//	go run ./examples/tls
//
// The server is a listener whose sockets do the TLS server handshake on a
// goroutine they own and report Connected when it completes; its read
// callback echoes. The client is a socket that connects and does the client
// handshake, verifying the server against the generated certificate (no
// verification is skipped), then sends lines through Send and reads the
// echo from In. Drain ends the client gracefully: every byte is written,
// then TLS close_notify is sent, which libevent never does. Everything
// closes before the program exits.
package main

import (
	"log"
	"os"
)

func main() {
	if err := run(os.Stdout, "127.0.0.1:0"); err != nil {
		log.Fatal(err)
	}
}
