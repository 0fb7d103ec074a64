// Package clock is the time source that bev's timeouts and rate limits
// share. A [Clock] tells the time and arms func timers; [Real] is the
// system's clock. A test injects a clock of its own (one that moves only
// when the test says so) through actor.BaseConfig, so that a bufferevent's
// timeouts, its own rate limit and the toxics of package pipeline/toxic
// all follow it, or runs under testing/synctest, whose bubble makes the
// real clock virtual. Package limiter takes a clock with
// limiter.WithClock. A context carries one ([NewContext], [FromContext]):
// a bufferevent hands its Base's clock to a dial and a handshake that
// way, and [WithTimeoutCause] bounds them on it (the TLS handshake
// timeouts).
package clock
