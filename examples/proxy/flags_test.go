package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bevgo/bev/internal/testconn"
)

// TestFlagErrors: bad flags and unusable addresses give one line on
// stderr and exit status 2, and start nothing.
func TestFlagErrors(t *testing.T) {
	busy := testconn.Listen(t)
	missing := filepath.Join(t.TempDir(), "missing.pem")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown flag", []string{"-nope"}, "flag provided but not defined"},
		{"argument", []string{"extra"}, `unexpected argument "extra"`},
		{"bad rate", []string{"-rate", "fast"}, `bad size "fast"`},
		{"negative rate", []string{"-group-rate", "-5"}, `bad size "-5"`},
		{"bad listen", []string{"-listen", "nowhere"}, "-listen: want host:port"},
		{"listen port range", []string{"-listen", "70000"}, "-listen: port 70000 out of range"},
		{"listen in use", []string{"-listen", busy.Addr().String(), "-target", "127.0.0.1:1"}, "-listen: conn: listen"},
		{"listen unresolvable", []string{"-listen", "256.0.0.1:0", "-target", "127.0.0.1:1"}, "-listen: conn: listen"},
		{"bad target", []string{"-target", "example.com"}, "-target: want host:port"},
		{"target port", []string{"-target", "example.com:0"}, `-target: bad port "0"`},
		{"stats in use", []string{"-listen", "127.0.0.1:0", "-target", "127.0.0.1:1", "-stats", busy.Addr().String()}, "-stats: listen tcp"},
		{"filter alone", []string{"-tls-filter"}, "-tls-filter needs -tls-upstream"},
		{"insecure alone", []string{"-insecure"}, "-insecure needs -tls-upstream"},
		{"insecure and ca", []string{"-tls-upstream", "-insecure", "-tls-ca", missing}, "contradict"},
		{"cert alone", []string{"-tls-cert", missing}, "-tls-cert and -tls-key go together"},
		{"missing cert", []string{"-tls-cert", missing, "-tls-key", missing}, "-tls-cert/-tls-key: open"},
		{"missing ca", []string{"-tls-upstream", "-target", "127.0.0.1:1", "-tls-ca", missing}, "-tls-ca: open"},
		{"tls-upstream without target", []string{"-tls-upstream"}, "-tls-upstream needs -target"},
		{"bad log level", []string{"-log-level", "loud"}, "-log-level"},
		{"negative log flush", []string{"-log-flush", "-1ms"}, "-log-flush cannot be negative"},
		{"min-share alone", []string{"-min-share", "1KiB"}, "-min-share needs -group-rate"},
		{"negative timeout", []string{"-idle-timeout", "-1s"}, "timeouts cannot be negative"},
		{"zero connect timeout", []string{"-connect-timeout", "0"}, "-connect-timeout must be positive"},
		{"bad duration", []string{"-drain-timeout", "soon"}, "invalid value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut strings.Builder
			code := run(context.Background(), tc.args, &out, &errOut)
			if code != 2 {
				t.Errorf("run(%q) = %d, want 2", tc.args, code)
			}
			msg := errOut.String()
			if strings.Count(msg, "\n") != 1 || !strings.HasPrefix(msg, "proxy: ") || !strings.Contains(msg, tc.want) {
				t.Errorf("run(%q) stderr = %q, want one line with %q", tc.args, msg, tc.want)
			}
			if out.Len() != 0 {
				t.Errorf("run(%q) wrote %q to stdout, want nothing", tc.args, out.String())
			}
		})
	}
}

func TestHelp(t *testing.T) {
	var out, errOut strings.Builder
	if code := run(context.Background(), []string{"-h"}, &out, &errOut); code != 0 {
		t.Errorf("run(-h) = %d, want 0", code)
	}
	for _, flag := range []string{"-listen", "-target", "-tls-upstream", "-tls-filter", "-rate", "-group-rate", "-min-share", "-idle-timeout", "-stats", "-drain-timeout"} {
		if !strings.Contains(out.String(), flag) {
			t.Errorf("run(-h) usage lacks %s:\n%s", flag, out.String())
		}
	}
}

func TestNormaliseAddr(t *testing.T) {
	for in, want := range map[string]string{"8080": "127.0.0.1:8080", "0": "127.0.0.1:0", "[::1]:80": "[::1]:80", "localhost:1": "localhost:1"} {
		if got, err := normaliseAddr(in); got != want || err != nil {
			t.Errorf("normaliseAddr(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
