#!/usr/bin/env bash
# test.sh runs every check the project asks of a change: go vet, the pinned
# staticcheck (a tool dependency in go.mod, so it installs itself), and the
# whole suite under the race detector, then the socket packages without
# it. .ci/run calls this same script.
set -euo pipefail
cd "$(dirname "$0")"
# examples/proxy is tested from outside by curl and openssl s_client.
command -v curl >/dev/null && command -v openssl >/dev/null || (apt-get update -qq && apt-get install -y -qq curl openssl) >/dev/null
# limiter/redisgroup, examples/proxy and examples/ratelim start their own
# redis-server (a free loopback port, persistence off) for the shared group.
command -v redis-server >/dev/null || (apt-get update -qq && apt-get install -y -qq redis-server) >/dev/null
go vet ./...
go tool staticcheck ./...
go test -race -count=1 -timeout 9m ./...
# Without the race detector a socket's reads go through
# syscall.RawSyscall (actor/sysconn_linux.go, sysRead), a path the race
# build does not take: the packages that drive sockets run once more so.
go test -count=1 -timeout 5m ./actor/ ./conn/... ./examples/echo/ ./examples/proxy/
