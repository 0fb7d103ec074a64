package actor

import (
	"strconv"
	"strings"
)

// Event is the set of bits given to an event callback and sent on the
// Events channel. The values are libevent's BEV_EVENT_* bits, so logs and
// ports read the same numbers.
type Event uint16

// The event bits. Reading or Writing says which direction an EOF, Error or
// Timeout happened on; Connected and Error without a direction report the
// end of a connect.
const (
	Reading   Event = 0x01 // BEV_EVENT_READING: the event happened while reading
	Writing   Event = 0x02 // BEV_EVENT_WRITING: the event happened while writing
	EOF       Event = 0x10 // BEV_EVENT_EOF: the peer ended its stream
	Error     Event = 0x20 // BEV_EVENT_ERROR: an error; the callback's err says which
	Timeout   Event = 0x40 // BEV_EVENT_TIMEOUT: a read or write timeout expired
	Connected Event = 0x80 // BEV_EVENT_CONNECTED: a connect or handshake completed
)

var eventNames = [...]struct {
	bit  Event
	name string
}{
	{Reading, "Reading"}, {Writing, "Writing"}, {EOF, "EOF"},
	{Error, "Error"}, {Timeout, "Timeout"}, {Connected, "Connected"},
}

// String returns the set bits joined by "|", such as "Reading|EOF"; unknown
// bits are shown in hex and the empty set is "0".
func (e Event) String() string {
	if e == 0 {
		return "0"
	}
	var sb strings.Builder
	for _, n := range eventNames {
		if e&n.bit != 0 {
			if sb.Len() > 0 {
				sb.WriteByte('|')
			}
			sb.WriteString(n.name)
			e &^= n.bit
		}
	}
	if e != 0 {
		if sb.Len() > 0 {
			sb.WriteByte('|')
		}
		sb.WriteString("0x" + strconv.FormatUint(uint64(e), 16))
	}
	return sb.String()
}

// Dir names the directions of a bufferevent for Enable, Disable,
// SetWatermark, Flush and Trigger: libevent's EV_READ and EV_WRITE. It is a
// separate type from Event on purpose: libevent's EV_READ (0x02) and
// BEV_EVENT_READING (0x01) differ, a classic source of bugs.
type Dir uint8

// The directions.
const (
	Read  Dir = 1 << iota // EV_READ
	Write                 // EV_WRITE
)

// valid reports whether d is Read, Write or both.
func (d Dir) valid() bool { return d != 0 && d&^(Read|Write) == 0 }

// String returns "Read", "Write", "Read|Write", or the value in hex for
// unknown bits.
func (d Dir) String() string {
	switch d {
	case 0:
		return "0"
	case Read:
		return "Read"
	case Write:
		return "Write"
	case Read | Write:
		return "Read|Write"
	}
	return "Dir(0x" + strconv.FormatUint(uint64(d), 16) + ")"
}

// Option is a set of construction flags, with libevent's BEV_OPT_* values.
type Option uint32

// The options.
const (
	// CloseOnFree closes the transport when the bufferevent is closed
	// (BEV_OPT_CLOSE_ON_FREE). Without it the transport is left open and
	// its loops are stopped through deadlines; a transport without
	// deadlines is closed anyway, since nothing else can unblock its Read.
	CloseOnFree Option = 1
	// ThreadSafe is accepted for libevent compatibility
	// (BEV_OPT_THREADSAFE); every bufferevent is safe for concurrent use.
	ThreadSafe Option = 2
	// DeferCallbacks queues callbacks and runs them on the Base's
	// dispatcher in priority order (BEV_OPT_DEFER_CALLBACKS): read and
	// write requests coalesce into one call each, event bits are ORed,
	// and Connected runs first.
	DeferCallbacks Option = 4
	// UnlockCallbacks is accepted with DeferCallbacks
	// (BEV_OPT_UNLOCK_CALLBACKS); there is no lock to release, but as in
	// libevent it is an error without DeferCallbacks.
	UnlockCallbacks Option = 8
	// LargeStack starts the actor's goroutine on an 8 KiB stack, grown
	// once from its first frame (bev's own; libevent has no goroutines).
	// A goroutine starts on 2 KiB and grows by doubling, each time copying
	// its stack and adjusting every frame on it: a short connection whose
	// callbacks go deep (a proxy's, which dials, logs and closes its peer)
	// paid two or three such copies deep in call chains, 5% of its CPU.
	// An idle bufferevent with it holds about 5 KiB more (until the GC
	// halves a stack it uses less than a quarter of): leave it off for
	// servers of many idle connections.
	LargeStack Option = 1 << 16
)

const allOptions = CloseOnFree | ThreadSafe | DeferCallbacks | UnlockCallbacks | LargeStack

// FlushMode tells Flush and filter stages how hard to push: libevent's
// BEV_NORMAL, BEV_FLUSH and BEV_FINISHED.
type FlushMode int

// The flush modes.
const (
	// Normal processes what the watermarks allow.
	Normal FlushMode = 0
	// Flush pushes out everything buffered (a stage emits what it holds,
	// as zlib's sync flush).
	Flush FlushMode = 1
	// Finished is Flush plus end of stream: after the output is written
	// the transport is half-closed, so the peer sees EOF.
	Finished FlushMode = 2
)

// valid reports whether m is Normal, Flush or Finished.
func (m FlushMode) valid() bool { return m >= Normal && m <= Finished }

// String returns "Normal", "Flush", "Finished", or the number.
func (m FlushMode) String() string {
	switch m {
	case Normal:
		return "Normal"
	case Flush:
		return "Flush"
	case Finished:
		return "Finished"
	}
	return "FlushMode(" + strconv.Itoa(int(m)) + ")"
}

// TriggerOption modifies Trigger and TriggerEvent, with libevent's
// BEV_TRIG_* values.
type TriggerOption uint32

// The trigger options.
const (
	// TriggerIgnoreWatermarks runs the callback even when the watermark
	// condition does not hold (BEV_TRIG_IGNORE_WATERMARKS).
	TriggerIgnoreWatermarks TriggerOption = 1 << 16
	// TriggerDefer runs the callback later, from the deferred queue, even
	// when the bufferevent was not made with DeferCallbacks
	// (BEV_TRIG_DEFER_CALLBACKS).
	TriggerDefer TriggerOption = TriggerOption(DeferCallbacks)
)
