#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# `make demo`: stock Debian nginx + OpenSSL 3 serving files over TLS 1.3 and
# TLS 1.2 through ktls.  nginx runs in the foreground under ktls-run with
# `ssl_conf_command Options KTLS;` and `sendfile on;` (configuration:
# tests/interop/nginx.conf.in), on 127.0.0.1, everything in a temporary
# directory.  curl downloads files of several sizes, their SHA-256 digests
# are checked against the originals, and ktls-stat shows the records ktls
# encrypted.  Exit status 0 only if every check passed.
#
# usage: scripts/demo.sh [BUILD_DIR]          (default: build)
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-build}" 2>/dev/null && pwd) || {
	echo "demo: no build directory ${1:-build} (run make first)" >&2
	exit 1
}
run="$build/tools/ktls-run"
stat="$build/tools/ktls-stat"
nginx=/usr/sbin/nginx

"$top/scripts/deps.sh"
for f in "$run" "$stat"; do
	[ -x "$f" ] || { echo "demo: $f missing: build first (make)" >&2; exit 1; }
done
for f in "$nginx" /usr/bin/curl /usr/bin/openssl /usr/bin/sha256sum; do
	[ -x "$f" ] || { echo "demo: $f missing (scripts/deps.sh)" >&2; exit 1; }
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ktls-demo.XXXXXX")
nginx_pid=""
cleanup() {
	rc=$?
	trap - EXIT INT TERM
	if [ -n "$nginx_pid" ] && kill -0 "$nginx_pid" 2>/dev/null; then
		workers=$(cat "/proc/$nginx_pid/task/$nginx_pid/children" \
		    2>/dev/null || true)
		kill -QUIT "$nginx_pid" 2>/dev/null || true
		i=0
		while kill -0 "$nginx_pid" 2>/dev/null && [ $i -lt 100 ]; do
			sleep 0.1
			i=$((i + 1))
		done
		if kill -0 "$nginx_pid" 2>/dev/null; then
			echo "demo: nginx did not quit in 10 s; killing it" >&2
			# shellcheck disable=SC2086
			kill -KILL "$nginx_pid" $workers 2>/dev/null || true
		fi
		wait "$nginx_pid" 2>/dev/null || true
	fi
	if [ $rc -ne 0 ] && [ -s "$tmp/error.log" ]; then
		echo "--- nginx error.log (tail)" >&2
		tail -n 20 "$tmp/error.log" >&2
	fi
	rm -rf "$tmp"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fail=0
bad() {
	echo "FAIL: $*" >&2
	fail=1
}

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# A stat value by name, 0 when absent (no process uses ktls yet).
stat_value() {
	"$stat" 2>/dev/null | awk -F': ' -v n="$1" '$1 == n { v = $2 } END { print v + 0 }'
}

echo "== files to serve"
mkdir -p "$tmp/www" "$tmp/tmp"
sizes="0 1 16385 1048583 67108864"
for s in $sizes; do
	head -c "$s" /dev/urandom >"$tmp/www/f$s"
	printf '   %10d bytes  sha256 %s\n' "$s" \
	    "$(sha256sum <"$tmp/www/f$s" | cut -c1-64)"
done

echo "== throw-away certificate (openssl req, RSA 2048, CN=localhost)"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost \
    -keyout "$tmp/key.pem" -out "$tmp/cert.pem" >/dev/null 2>&1

port=$(free_port)
http_port=$(free_port)
user=""
[ "$(id -u)" -ne 0 ] || user="user root;"
sed -e "s|@DIR@|$tmp|g" -e "s|@PORT@|$port|g" -e "s|@HTTP_PORT@|$http_port|g" \
    -e "s|@WORKERS@|2|g" -e "s|@USER@|$user|g" -e "s|@EXTRA@|${KTLS_NGINX_CONF_EXTRA:-}|g" \
    "$top/tests/interop/nginx.conf.in" >"$tmp/nginx.conf"

echo "== $nginx under ktls-run on https://127.0.0.1:$port/"
"$run" -- "$nginx" -e "$tmp/error.log" -p "$tmp" -c "$tmp/nginx.conf" \
    </dev/null >"$tmp/nginx.out" 2>&1 &
nginx_pid=$!
i=0
until curl -sk -o /dev/null "https://127.0.0.1:$port/f0"; do
	i=$((i + 1))
	if [ $i -gt 100 ] || ! kill -0 "$nginx_pid" 2>/dev/null; then
		cat "$tmp/nginx.out" >&2
		echo "demo: nginx did not start" >&2
		exit 1
	fi
	sleep 0.1
done
grep -E '^ *(ssl_conf_command|sendfile|worker_processes) ' "$tmp/nginx.conf" |
    sed 's/^ */   /'

echo "== ktls-stat before"
"$stat" | sed 's/^/   /' || true
rec0=$(stat_value kern.ipc.tls.stats.tx_records)
bytes0=$(stat_value kern.ipc.tls.stats.tx_bytes)

echo "== downloads (curl -k, SHA-256 checked)"
served=0
n=0
for v in 1.3 1.2; do
	if [ $v = 1.3 ]; then tls="--tlsv1.3"; else tls="--tlsv1.2 --tls-max 1.2"; fi
	for s in $sizes; do
		n=$((n + 1))
		out="$tmp/dl"
		# shellcheck disable=SC2086
		info=$(curl -sS -k --http1.1 $tls --max-time 120 -o "$out" \
		    -w '%{http_code} %{size_download} %{size_header} %{time_total}' \
		    -v "https://127.0.0.1:$port/f$s" 2>"$tmp/curl.err") || {
			bad "curl TLS$v f$s: exit $?: $(tail -n 1 "$tmp/curl.err")"
			continue
		}
		# shellcheck disable=SC2086
		set -- $info
		cipher=$(sed -n 's/^\* SSL connection using //p' "$tmp/curl.err")
		got=$(sha256sum <"$out" | cut -c1-64)
		want=$(sha256sum <"$tmp/www/f$s" | cut -c1-64)
		verdict=ok
		if [ "$1" != 200 ] || [ "$got" != "$want" ]; then
			verdict="WRONG (status $1, $2 bytes)"
			bad "TLS$v f$s: $verdict"
		fi
		served=$((served + $2 + $3))
		printf '   %-40s %10d bytes %7ss  sha256 %s\n' "$cipher" "$2" "$4" \
		    "$verdict"
		rm -f "$out"
	done
done

echo "== ktls-stat after"
"$stat" | sed 's/^/   /' || true
rec1=$(stat_value kern.ipc.tls.stats.tx_records)
bytes1=$(stat_value kern.ipc.tls.stats.tx_bytes)
drec=$((rec1 - rec0))
dbytes=$((bytes1 - bytes0))
if [ "$dbytes" -lt "$served" ]; then
	bad "ktls encrypted $dbytes bytes, but nginx served $served: TLS was not offloaded to ktls"
fi
if [ "$drec" -le 0 ]; then
	bad "kern.ipc.tls.stats.tx_records did not grow"
fi
if ! kill -0 "$nginx_pid" 2>/dev/null; then
	bad "nginx died"
fi
if grep -E '\[(alert|crit|emerg)\]' "$tmp/error.log" >&2; then
	bad "nginx error.log has alerts"
fi

echo "== summary"
echo "   $n downloads over TLS 1.3 and 1.2 from stock nginx (sendfile on, Options KTLS)"
echo "   nginx served $served bytes (bodies + headers)"
echo "   ktls encrypted $drec records, $dbytes bytes (kern.ipc.tls.stats.tx_records/tx_bytes)"
if [ $fail -ne 0 ]; then
	echo "demo: FAILED" >&2
	exit 1
fi
echo "demo: OK"
