/*
 * levecho: the libevent anchor of the echo comparison (bench/echo.sh).
 * A single-threaded TCP echo server on libevent 2.1 bufferevents, shaped
 * like bev's examples/echo:
 *
 *   - a read callback moves the input to the output without copying
 *     (evbuffer_add_buffer);
 *   - once MAX_QUEUED bytes wait for a client that does not read its echo,
 *     reading stops until half of them are out;
 *   - on EOF the output is flushed, then the bufferevent is freed; on an
 *     error it is freed at once.
 *
 *   usage: levecho PORT   (on 127.0.0.1)
 *   build: cc -O2 -o levecho levecho.c $(pkg-config --cflags --libs libevent_core)
 */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define MAX_QUEUED (64 * 1024)

static struct event_base *base;

static void on_read(struct bufferevent *bev, void *arg);
static void on_drained(struct bufferevent *bev, void *arg);
static void on_event(struct bufferevent *bev, short what, void *arg);

/* Echo what arrived; pause reading while the client lags behind. */
static void on_read(struct bufferevent *bev, void *arg)
{
	struct evbuffer *out = bufferevent_get_output(bev);

	(void)arg;
	evbuffer_add_buffer(out, bufferevent_get_input(bev));
	if (evbuffer_get_length(out) >= MAX_QUEUED) {
		bufferevent_disable(bev, EV_READ);
		bufferevent_setcb(bev, on_read, on_drained, on_event, NULL);
		bufferevent_setwatermark(bev, EV_WRITE, MAX_QUEUED / 2, 0);
	}
}

/* The output is down to half of MAX_QUEUED: read again. */
static void on_drained(struct bufferevent *bev, void *arg)
{
	(void)arg;
	bufferevent_setcb(bev, on_read, NULL, on_event, NULL);
	bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
	bufferevent_enable(bev, EV_READ);
}

/* The client has closed: free bev once its output is written. */
static void on_flushed(struct bufferevent *bev, void *arg)
{
	(void)arg;
	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		bufferevent_free(bev);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	(void)arg;
	if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR) &&
	    evbuffer_get_length(bufferevent_get_output(bev)) > 0) {
		bufferevent_disable(bev, EV_READ);
		bufferevent_setcb(bev, NULL, on_flushed, on_event, NULL);
		bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
		return;
	}
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		bufferevent_free(bev);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd,
		      struct sockaddr *sa, int socklen, void *arg)
{
	struct bufferevent *bev;

	(void)l; (void)sa; (void)socklen; (void)arg;
	bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		evutil_closesocket(fd);
		return;
	}
	bufferevent_setcb(bev, on_read, NULL, on_event, NULL);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
}

int main(int argc, char **argv)
{
	struct sockaddr_in addr;
	struct evconnlistener *listener;
	char *end;
	long port;

	port = argc == 2 ? strtol(argv[1], &end, 10) : -1;
	if (argc != 2 || *argv[1] == '\0' || *end != '\0' || port <= 0 || port > 65535) {
		fprintf(stderr, "usage: %s PORT\n", argv[0]);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	memset(&addr, 0, sizeof(addr));
	addr.sin_family = AF_INET;
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	addr.sin_port = htons((int)port);

	base = event_base_new();
	if (base == NULL)
		return 1;
	listener = evconnlistener_new_bind(base, on_accept, NULL,
					   LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, -1,
					   (struct sockaddr *)&addr, sizeof(addr));
	if (listener == NULL) {
		perror("levecho: listen");
		return 1;
	}
	event_base_dispatch(base);
	evconnlistener_free(listener);
	event_base_free(base);
	return 0;
}
