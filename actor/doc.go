// Package actor is the heart of bev: the bufferevent as an actor.
package actor
