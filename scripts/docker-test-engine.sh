# shellcheck shell=bash
# scripts/docker-test-engine.sh - a private Docker engine for the tests, and their image.
#
#   . scripts/docker-test-engine.sh
#   engine_up || exit 1          # the engine, its socket, the image; fails with a clear message
#   "$DOCKER" run ... "$ENGINE_IMAGE" ...
#   engine_down                  # idempotent, trap-safe: stops the engine by PID, removes everything
#
#   bash scripts/docker-test-engine.sh CMD...   # the same around one command (DOCKER_HOST set)
#
# The engine is Debian's docker.io (installed by scripts/install-deps.sh when missing), and
# it is the tests' own: its own data and exec roots and pidfile in a temp dir, its own socket
# /run/vgtest-docker-SUFFIX.sock, vfs storage, and it leaves the host's firewall, forwarding
# and bridges alone (--iptables=false --ip6tables=false --ip-forward=false --bridge=none):
# kernel tests of other runs count packets with nftables on this machine at the same time.
# Containers get `--network none` or `--network container:X`; their network is what the
# test builds itself.  No image is pulled: ENGINE_IMAGE is imported from a tarball of a root
# file system holding busybox-static and a static build of tests/tools/vgprobe.c.
#
# Variables set by engine_up (exported):
#   ENGINE_DIR      temp dir: data-root, exec-root, pidfile, daemon log, CLI config, rootfs
#   ENGINE_SOCK     the engine's socket
#   DOCKER_HOST     unix://$ENGINE_SOCK (so vpnguard-bpf and the CLI find it)
#   DOCKER_CONFIG   the CLI's own config dir, inside ENGINE_DIR
#   DOCKER          Debian's docker CLI (/usr/bin/docker: never another one on the PATH)
#   ENGINE_PID      dockerd's PID
#   ENGINE_IMAGE    vgtest:SUFFIX, the imported image: /bin/sh (busybox), /bin/vgprobe
#
# engine_rm_cgroup_parent REL removes what the runtime left of a --cgroup-parent REL in the
# cgroup v1 hierarchies of a hybrid layout (runc makes the parent in every hierarchy, and
# removes only the container's own directory).

_engine_repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

_engine_log() { printf 'engine: %s\n' "$*" >&2; }

_engine_fail() {
	_engine_log "the Docker engine cannot start: $*"
	[ -n "${ENGINE_DIR:-}" ] && [ -r "$ENGINE_DIR/dockerd.log" ] &&
		tail -n 15 "$ENGINE_DIR/dockerd.log" | sed 's/^/engine:   dockerd: /' >&2
	engine_down
	return 1
}

_engine_alive() { [ -n "${1:-}" ] && [ -d "/proc/$1" ] && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }

_engine_wait() { # SECONDS CMD...: poll every 0.1 s
	local n=$(($1 * 10))
	shift
	while [ "$n" -gt 0 ]; do
		"$@" && return 0
		sleep 0.1
		n=$((n - 1))
	done
	"$@"
}

_engine_answers() { "$DOCKER" version >/dev/null 2>&1; }

_engine_gone() { ! _engine_alive "$ENGINE_PID"; }

# The root file system of ENGINE_IMAGE, as a tarball on stdout.
_engine_rootfs_tar() {
	local root=$ENGINE_DIR/rootfs a
	mkdir -p "$root"/{bin,etc,proc,sys,dev,tmp,run} || return 1
	cp /bin/busybox "$root/bin/busybox" || return 1
	for a in $(/bin/busybox --list); do
		[ "$a" = busybox ] || ln -s busybox "$root/bin/$a"
	done
	cc -static -O2 -Wall -Wextra -Werror -o "$root/bin/vgprobe" "$_engine_repo/tests/tools/vgprobe.c" || return 1
	echo 'root:x:0:0:root:/:/bin/sh' >"$root/etc/passwd"
	echo 'nobody:x:65534:65534:nobody:/:/bin/sh' >>"$root/etc/passwd"
	printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
	tar -C "$root" -c .
}

engine_up() {
	local -
	set +e
	[ "$(id -u)" = 0 ] || { _engine_log "needs root"; return 1; }
	DOCKER=/usr/bin/docker
	if ! dpkg-query -W -f='${Status}' docker.io 2>/dev/null | grep -q 'install ok installed' ||
		! dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'install ok installed'; then
		_engine_log "docker.io or busybox-static missing: installing (scripts/install-deps.sh)"
		sh "$_engine_repo/scripts/install-deps.sh" >&2 || { _engine_log "installing docker.io failed"; return 1; }
	fi
	ENGINE_DIR=$(mktemp -d /tmp/vgdocker.XXXXXX) || return 1
	local suffix=${ENGINE_DIR##*.}
	ENGINE_SOCK=/run/vgtest-docker-$suffix.sock
	ENGINE_IMAGE=vgtest:${suffix,,}
	DOCKER_HOST=unix://$ENGINE_SOCK
	DOCKER_CONFIG=$ENGINE_DIR/cli
	export ENGINE_DIR ENGINE_SOCK ENGINE_IMAGE DOCKER_HOST DOCKER_CONFIG DOCKER
	# dockerd writes its trust key to /etc/docker, and the shims make /run/containerd/s:
	# put things back as they were.
	[ -e /etc/docker/key.json ] && touch "$ENGINE_DIR/had-key"
	[ -e /run/containerd ] && touch "$ENGINE_DIR/had-run-containerd"
	echo '{}' >"$ENGINE_DIR/daemon.json"
	dockerd --config-file "$ENGINE_DIR/daemon.json" \
		--data-root "$ENGINE_DIR/data" --exec-root "$ENGINE_DIR/exec" \
		--pidfile "$ENGINE_DIR/dockerd.pid" -H "$DOCKER_HOST" --storage-driver vfs \
		--iptables=false --ip6tables=false --ip-forward=false --ip-masq=false \
		--bridge=none --userland-proxy=false --log-level warn \
		>"$ENGINE_DIR/dockerd.log" 2>&1 </dev/null &
	ENGINE_PID=$!
	export ENGINE_PID
	_engine_wait 30 eval '_engine_answers || _engine_gone' || true
	_engine_answers || _engine_fail "dockerd (pid $ENGINE_PID) does not answer on $ENGINE_SOCK" || return 1
	_engine_rootfs_tar | "$DOCKER" import - "$ENGINE_IMAGE" >/dev/null ||
		_engine_fail "cannot import the test image" || return 1
	_engine_log "up: dockerd pid $ENGINE_PID on $ENGINE_SOCK, image $ENGINE_IMAGE"
}

# The containerd shims of our engine (named by our exec root) and their children, by PID.
_engine_strays() {
	local p cmd
	for p in /proc/[0-9]*; do
		cmd=$({ tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null) || continue
		case $cmd in
		*containerd-shim*"$ENGINE_DIR/exec/"*) echo "${p#/proc/}" ;;
		esac
	done
}

engine_down() {
	local -
	set +e
	[ -n "${ENGINE_DIR:-}" ] || return 0
	local pid child m
	if _engine_alive "${ENGINE_PID:-}"; then
		local ids
		ids=$(timeout 20 "$DOCKER" ps -aq 2>/dev/null)
		# shellcheck disable=SC2086
		[ -n "$ids" ] && timeout 60 "$DOCKER" rm -f $ids >/dev/null 2>&1
		kill -TERM "$ENGINE_PID" 2>/dev/null
		_engine_wait 20 _engine_gone || kill -KILL "$ENGINE_PID" 2>/dev/null
		_engine_wait 5 _engine_gone
		wait "$ENGINE_PID" 2>/dev/null
	fi
	# Only after a SIGKILL: containers left running under their shims.
	for pid in $(_engine_strays); do
		for child in $(ps -o pid= --ppid "$pid"); do
			kill -KILL "$child" 2>/dev/null
		done
		kill -KILL "$pid" 2>/dev/null
	done
	# Deepest first: the netns files and the data root the engine mounted.
	while read -r m; do
		umount -l "$m" 2>/dev/null
	done < <(awk -v d="$ENGINE_DIR/" 'index($2, d) == 1 {print $2}' /proc/self/mounts | sort -r)
	umount -l "$ENGINE_DIR/data" 2>/dev/null
	[ -e "$ENGINE_DIR/had-key" ] || rm -f /etc/docker/key.json
	[ -e "$ENGINE_DIR/had-run-containerd" ] || rmdir /run/containerd/s /run/containerd 2>/dev/null
	rm -rf --one-file-system "$ENGINE_DIR"
	rm -f "$ENGINE_SOCK"
	ENGINE_DIR=
	ENGINE_PID=
	return 0
}

engine_rm_cgroup_parent() {
	local rel=${1#/} h d
	case $rel in '' | *..*) return 2 ;; esac
	for h in /sys/fs/cgroup/*/; do
		[ -d "$h$rel" ] || continue
		while IFS= read -r d; do
			rmdir "$d" 2>/dev/null
		done < <(find "$h$rel" -depth -type d)
		# The parents the runtime made on the way, when empty.
		d=$(dirname "$h$rel")
		while [ "$d" != "${h%/}" ] && rmdir "$d" 2>/dev/null; do d=$(dirname "$d"); done
	done
}

# Run directly: an engine around one command.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	[ $# -gt 0 ] || { echo "usage: bash $0 CMD..." >&2; exit 2; }
	trap engine_down EXIT
	engine_up || exit 1
	"$@"
fi
