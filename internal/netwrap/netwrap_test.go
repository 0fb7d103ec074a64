package netwrap_test

import (
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/bevgo/bev/internal/netwrap"
	"github.com/bevgo/bev/internal/testconn"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// layer is a net.Conn over another, reached through NetConn as
// crypto/tls's is.
type layer struct{ net.Conn }

func (l layer) NetConn() net.Conn { return l.Conn }

// TestReset: Reset under two layers closes the TCP connection with an
// RST, which the peer reads as ECONNRESET, and the layers are passed
// through, not closed (a plain close of the outer one would send a FIN).
func TestReset(t *testing.T) {
	c, s := testconn.Pair(t, "tcp")
	if err := netwrap.Reset(layer{layer{c}}); err != nil {
		t.Fatalf("Reset: %v", err)
	}
	s.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := s.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("peer read: %v, want ECONNRESET", err)
	}
	if err := netwrap.Reset(nil); err != nil {
		t.Errorf("Reset(nil) = %v, want nil", err)
	}
}
