package bev_test

import (
	"testing"

	"go.uber.org/goleak"
)

// The end-to-end suite composes every package through the public API only.
// Each scenario ends with a leak check (VerifyTestMain, after all of them)
// and asserts the exact bytes delivered.

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
