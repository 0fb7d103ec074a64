package actor_test

import (
	"testing"

	"github.com/bevgo/bev/actor"
)

func TestEventString(t *testing.T) {
	for _, tc := range []struct {
		ev   actor.Event
		want string
	}{
		{0, "0"},
		{actor.Reading | actor.EOF, "Reading|EOF"},
		{actor.Timeout | actor.Writing, "Writing|Timeout"},
		{actor.Connected, "Connected"},
		{actor.Error | 0x100, "Error|0x100"},
	} {
		if got := tc.ev.String(); got != tc.want {
			t.Errorf("Event(%#x).String() = %q, want %q", uint16(tc.ev), got, tc.want)
		}
	}
	if got := (actor.Read | actor.Write).String(); got != "Read|Write" {
		t.Errorf("Dir String = %q", got)
	}
}
