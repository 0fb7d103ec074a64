//go:build unix

package conn_test

import (
	"errors"
	"syscall"
	"testing"

	"github.com/bevgo/bev/internal/testaddr"
)

// refusedAddr is testaddr.Refused: a port where connects are refused.
func refusedAddr(t testing.TB) string { return testaddr.Refused(t) }

// isRefused reports whether err says the connection was refused.
func isRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }
