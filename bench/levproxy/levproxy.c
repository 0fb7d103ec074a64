/*
 * levproxy: the libevent anchor of the proxy comparison (bench/proxy.sh).
 * A single-threaded TCP relay on libevent 2.1 bufferevents in the shape of
 * libevent's le-proxy sample, plain TCP only:
 *
 *   - each accepted client gets a bufferevent and a second one that
 *     connects to the target;
 *   - a read callback moves one side's input into the other's output
 *     without copying (evbuffer_add_buffer);
 *   - once an output holds MAX_OUTPUT bytes, the side feeding it stops
 *     reading until that output has drained to half of it;
 *   - on EOF or error of one side, what it read goes to the other side,
 *     whose output is flushed before it is freed.
 *
 *   usage: levproxy LISTEN_PORT TARGET_PORT   (both on 127.0.0.1)
 *   build: cc -O2 -o levproxy levproxy.c $(pkg-config --cflags --libs libevent_core)
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

#define MAX_OUTPUT (512 * 1024)

static struct event_base *base;
static struct sockaddr_in target_addr;

static void on_read(struct bufferevent *bev, void *partner);
static void on_drained(struct bufferevent *bev, void *partner);
static void on_event(struct bufferevent *bev, short what, void *partner);

/* Move what bev read into its partner's output; pause bev when full. */
static void on_read(struct bufferevent *bev, void *arg)
{
	struct bufferevent *partner = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer *out;

	if (partner == NULL) {
		evbuffer_drain(in, evbuffer_get_length(in));
		return;
	}
	out = bufferevent_get_output(partner);
	evbuffer_add_buffer(out, in);
	if (evbuffer_get_length(out) >= MAX_OUTPUT) {
		bufferevent_setcb(partner, on_read, on_drained, on_event, bev);
		bufferevent_setwatermark(partner, EV_WRITE, MAX_OUTPUT / 2, MAX_OUTPUT);
		bufferevent_disable(bev, EV_READ);
	}
}

/* bev's output drained to the low mark: its partner may read again. */
static void on_drained(struct bufferevent *bev, void *arg)
{
	struct bufferevent *partner = arg;

	bufferevent_setcb(bev, on_read, NULL, on_event, partner);
	bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
	if (partner != NULL)
		bufferevent_enable(partner, EV_READ);
}

/* bev's partner is gone: free bev once its output is written. */
static void on_flushed(struct bufferevent *bev, void *arg)
{
	(void)arg;
	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		bufferevent_free(bev);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct bufferevent *partner = arg;

	if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
		return; /* BEV_EVENT_CONNECTED */
	if (partner != NULL) {
		on_read(bev, partner);
		if (evbuffer_get_length(bufferevent_get_output(partner)) > 0) {
			bufferevent_setcb(partner, NULL, on_flushed, on_event, NULL);
			bufferevent_setwatermark(partner, EV_WRITE, 0, 0);
			bufferevent_disable(partner, EV_READ);
		} else {
			bufferevent_free(partner);
		}
	}
	bufferevent_free(bev);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd,
		      struct sockaddr *sa, int socklen, void *arg)
{
	int opts = BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS;
	struct bufferevent *client, *upstream;

	(void)l; (void)sa; (void)socklen; (void)arg;
	client = bufferevent_socket_new(base, fd, opts);
	upstream = bufferevent_socket_new(base, -1, opts);
	if (client == NULL || upstream == NULL ||
	    bufferevent_socket_connect(upstream, (struct sockaddr *)&target_addr,
				       sizeof(target_addr)) < 0) {
		if (client != NULL)
			bufferevent_free(client);
		else
			evutil_closesocket(fd);
		if (upstream != NULL)
			bufferevent_free(upstream);
		return;
	}
	bufferevent_setcb(client, on_read, NULL, on_event, upstream);
	bufferevent_setcb(upstream, on_read, NULL, on_event, client);
	bufferevent_enable(client, EV_READ | EV_WRITE);
	bufferevent_enable(upstream, EV_READ | EV_WRITE);
}

static int parse_port(const char *s)
{
	char *end;
	long v = strtol(s, &end, 10);

	return (*s != '\0' && *end == '\0' && v > 0 && v < 65536) ? (int)v : -1;
}

int main(int argc, char **argv)
{
	struct sockaddr_in listen_addr;
	struct evconnlistener *listener;
	int lport, tport;

	if (argc != 3 || (lport = parse_port(argv[1])) < 0 || (tport = parse_port(argv[2])) < 0) {
		fprintf(stderr, "usage: %s LISTEN_PORT TARGET_PORT\n", argv[0]);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	memset(&listen_addr, 0, sizeof(listen_addr));
	listen_addr.sin_family = AF_INET;
	listen_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	listen_addr.sin_port = htons(lport);
	target_addr = listen_addr;
	target_addr.sin_port = htons(tport);

	base = event_base_new();
	if (base == NULL)
		return 1;
	listener = evconnlistener_new_bind(base, on_accept, NULL,
					   LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, -1,
					   (struct sockaddr *)&listen_addr, sizeof(listen_addr));
	if (listener == NULL) {
		perror("levproxy: listen");
		return 1;
	}
	event_base_dispatch(base);
	evconnlistener_free(listener);
	event_base_free(base);
	return 0;
}
