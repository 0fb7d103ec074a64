package actor

// The small state machines of a connection's read and write sides. Each
// is a named state whose transitions are the methods below, so that the
// rest of the actor asks a question (ended, active, due) instead of
// combining booleans. docs/design.md draws them.

// readEnd is how the read side of the current transport ended, if it has:
// the actor reads no more once it has (updateReadLimit), and closes In
// once everything before the end was sent (closeInIfDone). attach starts
// a transport at readOpen; endRead moves it on. An end that comes while
// reading is disabled waits in actorState.endWhileDisabled first (see landRead).
type readEnd uint8

const (
	readOpen   readEnd = iota // the stream may bring more
	readEOF                   // the peer's EOF was seen
	readFailed                // a read error was seen
)

// ended reports whether the read side has ended, by EOF or error.
func (e readEnd) ended() bool { return e != readOpen }

// closeWriteState is where the write side's half-close is. Flush(Write,
// Finished) and Drain ask for it (ask); pumpWrite sends it once the
// output is written (send): a plain socket's actor shuts it down itself,
// any other transport's writer loop does; the result, through onWrote,
// marks it done (finish), and a Drain waits for that. attach starts a transport
// at closeWriteNone.
type closeWriteState uint8

const (
	closeWriteNone   closeWriteState = iota // nobody asked for a half-close
	closeWriteWanted                        // asked: sent once the output is written
	closeWriteSent                          // sent: the actor or the writer loop runs it
	closeWriteDone                          // its result came back (done or failed)
)

// ask asks for the half-close; asking again changes nothing.
func (s *closeWriteState) ask() {
	if *s == closeWriteNone {
		*s = closeWriteWanted
	}
}

// asked reports whether a half-close was asked for, sent or not.
func (s closeWriteState) asked() bool { return s != closeWriteNone }

// due reports whether a half-close was asked for and not yet sent.
func (s closeWriteState) due() bool { return s == closeWriteWanted }

// send marks the half-close as sent (to the writer loop, or run by the
// actor on a plain socket).
func (s *closeWriteState) send() { *s = closeWriteSent }

// finish marks the half-close as done: its result came back (onWrote).
func (s *closeWriteState) finish() { *s = closeWriteDone }

// finished reports whether the half-close is done: its result came back.
func (s closeWriteState) finished() bool { return s == closeWriteDone }

// lingerState is where a Drain's linger is (see checkDrain): after the
// half-close of a network connection, the actor reads and drops what the
// peer still sends until the peer's EOF or lingerTime. attach starts a
// transport at lingerOff.
type lingerState uint8

const (
	lingerOff     lingerState = iota // not lingering
	lingerReading                    // reading to the peer's EOF, the linger timer running
	lingerOver                       // the peer's EOF came or the timer gave up; reads are still dropped
)

// start begins lingering: reads are dropped and the timer runs.
func (s *lingerState) start() { *s = lingerReading }

// stop ends the wait for the peer's EOF: it came, or the timer fired.
func (s *lingerState) stop() { *s = lingerOver }

// active reports whether reads are dropped: lingering began, over or not.
func (s lingerState) active() bool { return s != lingerOff }

// reading reports whether the linger still waits for the peer's EOF, its
// timer running.
func (s lingerState) reading() bool { return s == lingerReading }

// over reports whether the linger has ended.
func (s lingerState) over() bool { return s == lingerOver }
