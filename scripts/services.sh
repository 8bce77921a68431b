#!/usr/bin/env bash
# Backplane test servers: etcd, NATS (JetStream), Kafka (librdkafka mock), PostgreSQL, Prometheus.
#
# Usage: scripts/services.sh COMMAND [--fresh] [NAME...]     NAME: etcd nats kafka postgres prometheus (default: all)
#   up [--fresh] [NAME...]  install missing packages (apt), start what is not running, wait until ready
#   down [NAME...]          stop (TERM, then KILL after 10 s; postgres: pg_ctl stop -m fast), wipe data
#   restart [NAME...]       graceful stop + start, data dir and port kept (kafka: see below)
#   kill NAME...            SIGKILL (crash simulation for fault tests), data dir kept
#   status [NAME...]        one line per server; exit 1 if any of them is not running/answering
#   env                     print KEY=VALUE lines of running servers: set -a; . <(scripts/services.sh env)
#   install [NAME...]       install missing packages (apt) only, start nothing; NAME may also be
#                           chromium (headless browser tests; default: every server and chromium)
#
# Endpoints (127.0.0.1 only, fixed non-default ports):
#   ETCD_ENDPOINTS=http://127.0.0.1:23790   (peer 23800)
#   NATS_URL=nats://127.0.0.1:42220         (JetStream on, monitor http://127.0.0.1:48222)
#   KAFKA_BROKERS=127.0.0.1:PORT            (random port: see below)
#   DATABASE_URL=postgres://postgres@127.0.0.1:54329/backplane  (trust auth, no unix socket)
#   PROMETHEUS_URL=http://127.0.0.1:49090   (scrapes every 1 s the targets listed in
#   PROMETHEUS_TARGETS_DIR=$DIR/prometheus/targets: *.json file_sd files an app writes, re-read live)
#
# State: ${BACKPLANE_SERVICES_DIR:-$TMPDIR/backplane-services} (outside the repo: the postgres user must reach it)/{pids/NAME.pid,logs/NAME.log,data/NAME/,env}
#
# Data policy: `up` REUSES an existing data dir of a stopped server (so `kill X; up X` restarts a
# crashed server on its old data and port) and creates it fresh when there is none. `down` wipes the
# data dir, so `down; up` gives a clean state. `up --fresh` wipes the data dir of every named server
# that is not running. A server that is already running and answers is left alone; one whose
# process lives but does not answer is restarted.
#
# Kafka: the librdkafka (2.0.2) mock cluster, run inside `kcat -C`. It keeps everything in memory,
# so any restart loses all topics/offsets, and it always listens on a random port: librdkafka has no
# option for a fixed mock port (only test.mock.num.brokers and test.mock.broker.rtt; see
# edenhill/kcat#458). After a kafka restart, re-read KAFKA_BROKERS from the env file.
# KAFKA_MOCK_BROKERS=3 gives a 3-broker mock cluster (KAFKA_BROKERS then lists 3 addresses).
#
# The env file lists only servers that are running (kill/down remove their line).
# PostgreSQL runs as user postgres when this script runs as root, so that user must be able to
# traverse the state dir (not the case under /root: set BACKPLANE_SERVICES_DIR elsewhere).
# `kill` waits until the process is fully gone: PID 1 on these machines reaps orphans only every
# ~1.3 s, and postgres refuses to start while the PID in its stale postmaster.pid still exists.
#
# Prometheus: Debian's package (2.42 on bookworm), run as this user with its own config
# ($DIR/prometheus/prometheus.yml, written at each start) and storage in the data dir. Apps whose
# ports are dynamic register themselves by writing a file_sd file into the targets dir, e.g.
# [{"targets":["127.0.0.1:9464"],"labels":{"service":"orders"}}]. --web.enable-lifecycle is on.
#
# Other env: BACKPLANE_SERVICES_TIMEOUT (readiness timeout in seconds, default 30).
set -euo pipefail

DIR=${BACKPLANE_SERVICES_DIR:-${TMPDIR:-/tmp}/backplane-services}
TIMEOUT=${BACKPLANE_SERVICES_TIMEOUT:-30}
KAFKA_MOCK_BROKERS=${KAFKA_MOCK_BROKERS:-1}
ALL=(etcd nats kafka postgres prometheus)

# Ports can be moved (with another BACKPLANE_SERVICES_DIR) to run a second, private set: fault
# tests kill and restart their own servers so that tests sharing the default ones are not disturbed.
ETCD_PORT=${BACKPLANE_ETCD_PORT:-23790} ETCD_PEER_PORT=${BACKPLANE_ETCD_PEER_PORT:-23800}
NATS_PORT=${BACKPLANE_NATS_PORT:-42220} NATS_MON_PORT=${BACKPLANE_NATS_MON_PORT:-48222}
PG_PORT=${BACKPLANE_PG_PORT:-54329}
PROM_PORT=${BACKPLANE_PROMETHEUS_PORT:-49090}

die() { echo "services.sh: $*" >&2; exit 1; }
# Time in integer microseconds (EPOCHREALTIME uses the locale's decimal separator).
now() { local t=$EPOCHREALTIME; echo "${t//[.,]/}"; }
usecs() { awk -v s="$1" 'BEGIN { printf "%d", s * 1000000 }'; } # seconds (may be fractional) -> us
elapsed() { local d=$(($(now) - $1)); printf '%d.%d' $((d / 1000000)) $((d % 1000000 / 100000)); }

pidfile() { echo "$DIR/pids/$1.pid"; }
logfile() { echo "$DIR/logs/$1.log"; }
datadir() { echo "$DIR/data/$1"; }
comm_of() { case $1 in etcd) echo etcd ;; nats) echo nats-server ;; kafka) echo kcat ;; postgres) echo postgres ;; prometheus) echo prometheus ;; esac; }

# Alive = exists, is not a zombie, and is still the program we started (guards against PID reuse).
pid_alive() { # NAME PID
	local stat
	[[ $2 =~ ^[0-9]+$ ]] || return 1
	stat=$(cat "/proc/$2/stat" 2>/dev/null) || return 1
	[[ ${stat#*) } != Z* ]] || return 1
	[[ $(cat "/proc/$2/comm" 2>/dev/null) == "$(comm_of "$1")" ]]
}
# Prints the PID of a running server NAME; fails (after removing a stale pid file) if not running.
running_pid() {
	local f pid
	f=$(pidfile "$1")
	[[ -f $f ]] || return 1
	pid=$(<"$f")
	if pid_alive "$1" "$pid"; then echo "$pid"; else rm -f "$f"; return 1; fi
}
# Waits until a PID has fully disappeared (also as a zombie: PID 1 here reaps orphans only every
# ~1.3 s, and postgres refuses to start while the PID in its stale postmaster.pid still exists).
wait_gone() { # SECONDS PID...
	local deadline p left
	deadline=$(($(now) + $(usecs "$1")))
	shift
	while :; do
		left=0
		for p in "$@"; do [[ -e /proc/$p ]] && left=1; done
		((left)) || return 0
		(($(now) < deadline)) || return 1
		sleep 0.05
	done
}
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

url_of() {
	case $1 in
	etcd) echo "http://127.0.0.1:$ETCD_PORT" ;;
	nats) echo "nats://127.0.0.1:$NATS_PORT" ;;
	kafka) cat "$DIR/pids/kafka.addr" 2>/dev/null || true ;;
	postgres) echo "postgres://postgres@127.0.0.1:$PG_PORT/backplane" ;;
	prometheus) echo "http://127.0.0.1:$PROM_PORT" ;;
	esac
}
env_line() {
	case $1 in
	etcd) echo "ETCD_ENDPOINTS=$(url_of etcd)" ;;
	nats) echo "NATS_URL=$(url_of nats)" ;;
	kafka) echo "KAFKA_BROKERS=$(url_of kafka)" ;;
	postgres) echo "DATABASE_URL=$(url_of postgres)" ;;
	prometheus) printf 'PROMETHEUS_URL=%s\nPROMETHEUS_TARGETS_DIR=%s\n' "$(url_of prometheus)" "$DIR/prometheus/targets" ;;
	esac
}
write_env() {
	local n tmp="$DIR/env.tmp"
	: >"$tmp"
	for n in "${ALL[@]}"; do
		if running_pid "$n" >/dev/null && [[ -n $(url_of "$n") ]]; then env_line "$n" >>"$tmp"; fi
	done
	mv -f "$tmp" "$DIR/env"
}

# ---------------------------------------------------------------- installation
pg_bindir() {
	local d
	while read -r d; do
		[[ -x $d/initdb && -x $d/pg_ctl ]] && { echo "$d"; return 0; }
	done < <(printf '%s\n' /usr/lib/postgresql/*/bin | sort -rV)
	command -v initdb >/dev/null && command -v pg_ctl >/dev/null && { dirname "$(command -v pg_ctl)"; return 0; }
	return 1
}
ensure_installed() { # NAME...
	local n pkgs=() sudo=()
	command -v curl >/dev/null || pkgs+=(curl)
	for n in "$@"; do
		case $n in
		etcd) command -v etcd >/dev/null || pkgs+=(etcd-server) ;;
		nats) command -v nats-server >/dev/null || pkgs+=(nats-server) ;;
		kafka) command -v kcat >/dev/null || pkgs+=(kcat) ;;
		postgres) pg_bindir >/dev/null || pkgs+=(postgresql) ;;
		prometheus) command -v prometheus >/dev/null || pkgs+=(prometheus) ;;
		chromium) command -v chromium >/dev/null || pkgs+=(chromium) ;;
		esac
	done
	((${#pkgs[@]})) || return 0
	if ((EUID != 0)); then
		command -v sudo >/dev/null || die "need root (or sudo) to install: ${pkgs[*]}"
		sudo=(sudo)
	fi
	echo "installing ${pkgs[*]} (apt) ..."
	local log="$DIR/logs/apt.log"
	if ! { "${sudo[@]}" apt-get update -qq && "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq --no-install-recommends "${pkgs[@]}"; } </dev/null >"$log" 2>&1; then
		tail -n 20 "$log" >&2
		die "apt-get install ${pkgs[*]} failed (log: $log)"
	fi
}

# ---------------------------------------------------------------- start / ready
as_pg() { # run a command as user postgres when root, else as the current user
	if ((EUID == 0)); then (cd / && runuser -u postgres -- "$@"); else (cd / && "$@"); fi
}

launch() { # NAME CMD... : start CMD in the background; $! is the server itself
	local n=$1
	shift
	"$@" </dev/null >>"$(logfile "$n")" 2>&1 9>&- &
	echo $! >"$(pidfile "$n")"
}

start_server() { # NAME; starts without waiting (except postgres, whose pg_ctl -w waits)
	local name=$1 d log
	d=$(datadir "$name")
	log=$(logfile "$name")
	[[ -f $log ]] && mv -f "$log" "$log.prev"
	: >"$log"
	case $name in
	etcd | nats | postgres | prometheus)
		local p
		p=$(case $name in etcd) echo "$ETCD_PORT" ;; nats) echo "$NATS_PORT" ;; postgres) echo "$PG_PORT" ;; prometheus) echo "$PROM_PORT" ;; esac)
		if port_open "$p"; then
			echo "port $p is already in use by a process not started from $DIR" >>"$log"
			return 1
		fi
		;;
	esac
	case $name in
	etcd)
		mkdir -p "$d"
		chmod 700 "$d"
		launch etcd etcd --name backplane --data-dir "$d" \
			--listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
			--listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
			--initial-cluster "backplane=http://127.0.0.1:$ETCD_PEER_PORT" --initial-cluster-state new \
			--heartbeat-interval 25 --election-timeout 250
		;;
	nats)
		mkdir -p "$d"
		launch nats nats-server -a 127.0.0.1 -p "$NATS_PORT" -m "$NATS_MON_PORT" -js -sd "$d"
		;;
	kafka)
		rm -f "$DIR/pids/kafka.addr"
		# -C never reads stdin, so </dev/null is fine: kcat keeps consuming until signalled.
		launch kafka kcat -q -b 127.0.0.1:1 -X "test.mock.num.brokers=$KAFKA_MOCK_BROKERS" -C -t __keepalive
		;;
	prometheus)
		local conf=$DIR/prometheus
		mkdir -p "$d" "$conf/targets"
		# scrape_timeout must not exceed the interval (its default is 10 s).
		cat >"$conf/prometheus.yml" <<-EOF
			global: { scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s }
			scrape_configs:
			  - job_name: backplane
			    file_sd_configs: [{ files: ["$conf/targets/*.json"], refresh_interval: 1s }]
		EOF
		launch prometheus prometheus --config.file "$conf/prometheus.yml" --storage.tsdb.path "$d" \
			--web.listen-address "127.0.0.1:$PROM_PORT" --web.enable-lifecycle --log.level warn
		;;
	postgres)
		local bin old
		bin=$(pg_bindir) || return 1
		if ((EUID == 0)); then
			chown postgres: "$log"
			as_pg test -x "$DIR/data" || {
				echo "user postgres cannot reach $DIR: set BACKPLANE_SERVICES_DIR to a world-traversable path" >>"$log"
				return 1
			}
		fi
		if [[ ! -f $d/PG_VERSION ]]; then
			rm -rf "$d"
			mkdir -m 700 "$d"
			((EUID != 0)) || chown postgres: "$d"
			as_pg "$bin/initdb" -D "$d" -A trust -U postgres >>"$log" 2>&1 9>&- || return 1
		fi
		# After a SIGKILL the old postmaster PID may linger (zombie) and block the start.
		if [[ -f $d/postmaster.pid ]]; then
			old=$(head -n 1 "$d/postmaster.pid")
			if [[ $old =~ ^[0-9]+$ ]]; then wait_gone "$TIMEOUT" "$old" || true; fi
		fi
		local out pg_t=$(($(usecs "$TIMEOUT") / 1000000))
		((pg_t > 0)) || pg_t=1
		out=$(as_pg "$bin/pg_ctl" -D "$d" -l "$log" -w -t "$pg_t" \
			-o "-p $PG_PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=''" start 2>&1 9>&-) ||
			{ echo "$out" >>"$log"; return 1; }
		head -n 1 "$d/postmaster.pid" >"$(pidfile postgres)"
		;;
	esac
}

is_ready() { # NAME
	case $1 in
	etcd) curl -sf -m 2 "http://127.0.0.1:$ETCD_PORT/health" | grep -q '"health":"true"' ;;
	nats) curl -sf -m 2 "http://127.0.0.1:$NATS_MON_PORT/healthz?js-enabled-only=true" >/dev/null ;;
	kafka)
		local addr
		addr=$(url_of kafka)
		if [[ -z $addr ]]; then
			addr=$(sed -n 's/.*Mock cluster enabled:.* replaced with \([0-9.:,]*\).*/\1/p' "$(logfile kafka)" | tail -n 1)
			[[ -n $addr ]] || return 1
			echo "$addr" >"$DIR/pids/kafka.addr"
		fi
		addr=${addr%%,*}
		port_open "${addr##*:}"
		;;
	postgres)
		as_pg "$(pg_bindir)/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -Atqc 'select 1' >/dev/null 2>&1
		;;
	prometheus) curl -sf -m 2 "http://127.0.0.1:$PROM_PORT/-/ready" >/dev/null ;;
	esac
}

fail() { # NAME MESSAGE
	local pid
	echo "$(printf '%-8s' "$1") FAILED: $2 (log: $(logfile "$1"))"
	tail -n 20 "$(logfile "$1")" | sed 's/^/    /'
	if pid=$(running_pid "$1"); then stop_server "$1" keep >/dev/null 2>&1 || true; fi
	return 1
}

up_one() { # NAME FRESH
	local name=$1 fresh=$2 t0 pid
	if pid=$(running_pid "$name"); then
		if is_ready "$name"; then
			printf '%-8s already running (pid %s) at %s\n' "$name" "$pid" "$(url_of "$name")"
			return 0
		fi
		# Alive but not answering (seen: a long-lived kcat whose mock broker stopped listening):
		# start it again rather than hand its address to the tests.
		printf '%-8s running (pid %s) but not answering: restarting it\n' "$name" "$pid"
		stop_server "$name" keep >/dev/null 2>&1 || true
	fi
	[[ $fresh == 1 ]] && rm -rf "$(datadir "$name")"
	[[ $name != kafka ]] || rm -f "$DIR/pids/kafka.addr"
	t0=$(now)
	start_server "$name" || { fail "$name" "could not start"; return 1; }
	pid=$(<"$(pidfile "$name")")
	local deadline
	deadline=$((t0 + $(usecs "$TIMEOUT")))
	until is_ready "$name"; do
		pid_alive "$name" "$pid" || { fail "$name" "exited during startup"; return 1; }
		(($(now) < deadline)) || { fail "$name" "not ready after ${TIMEOUT} s"; return 1; }
		sleep 0.05
	done
	if [[ $name == postgres ]]; then
		local psql
		psql=$(pg_bindir)/psql
		if [[ -z $(as_pg "$psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -Atqc \
			"select 1 from pg_database where datname = 'backplane'") ]]; then
			as_pg "$psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -qc 'create database backplane' \
				>>"$(logfile postgres)" 2>&1 || { fail postgres "create database backplane failed"; return 1; }
		fi
	fi
	printf '%-8s ready at %s (%s s)\n' "$name" "$(url_of "$name")" "$(elapsed "$t0")"
}

# ---------------------------------------------------------------- stop
stop_server() { # NAME keep|wipe
	local name=$1 mode=$2 pid
	if pid=$(running_pid "$name"); then
		if [[ $name == postgres ]]; then
			as_pg "$(pg_bindir)/pg_ctl" -D "$(datadir postgres)" -m fast -w -t 10 stop >>"$(logfile postgres)" 2>&1 9>&- || true
		else
			kill -TERM "$pid" 2>/dev/null || true
		fi
		local i
		for ((i = 0; i < 200; i++)); do pid_alive "$name" "$pid" || break; sleep 0.05; done
		if pid_alive "$name" "$pid"; then
			kill -KILL "$pid" 2>/dev/null || true
			wait_gone 10 "$pid" || true
		fi
		printf '%-8s stopped\n' "$name"
		STOPPED+=("$pid")
	fi
	rm -f "$(pidfile "$name")"
	[[ $name != kafka ]] || rm -f "$DIR/pids/kafka.addr"
	[[ $mode != wipe ]] || rm -rf "$(datadir "$name")"
	# Targets registered with a wiped Prometheus belong to runs that are over.
	[[ $mode != wipe || $name != prometheus ]] || rm -rf "$DIR/prometheus"
}

kill_server() { # NAME: SIGKILL, keep data, wait until the process is fully gone
	local name=$1 pid kids=()
	if ! pid=$(running_pid "$name"); then printf '%-8s not running\n' "$name"; return 0; fi
	[[ $name != postgres ]] || mapfile -t kids < <(ps -o pid= --ppid "$pid" 2>/dev/null | tr -d ' ')
	kill -KILL "$pid"
	wait_gone 10 "$pid" "${kids[@]}" || echo "services.sh: $name pid $pid still present after 10 s" >&2
	rm -f "$(pidfile "$name")"
	[[ $name != kafka ]] || rm -f "$DIR/pids/kafka.addr"
	if [[ $name == kafka ]]; then
		printf '%-8s killed (pid %s; the mock kept its data in memory: lost)\n' "$name" "$pid"
	else
		printf '%-8s killed (pid %s, data kept)\n' "$name" "$pid"
	fi
}

# ---------------------------------------------------------------- main
cmd=${1:-}
[[ -n $cmd ]] || die "usage: $0 up|down|restart|kill|status|env|install [--fresh] [etcd|nats|kafka|postgres|prometheus|chromium ...]"
shift
fresh=0
names=()
for a in "$@"; do
	case $a in
	--fresh) fresh=1 ;;
	etcd | nats | kafka | postgres | prometheus) names+=("$a") ;;
	chromium)
		[[ $cmd == install ]] || die "chromium is not a server: only install takes it"
		names+=("$a")
		;;
	*) die "unknown argument: $a (servers: ${ALL[*]})" ;;
	esac
done
if ((${#names[@]} == 0)); then
	[[ $cmd != kill ]] || die "kill needs server names"
	names=("${ALL[@]}")
	[[ $cmd != install ]] || names+=(chromium)
fi

# postgres (run as user postgres) must be able to traverse $DIR and $DIR/data.
if [[ ! -d $DIR ]]; then mkdir -p "$DIR" && chmod 755 "$DIR"; fi
[[ -d $DIR/data ]] || mkdir -m 755 "$DIR/data"
mkdir -p "$DIR/pids" "$DIR/logs"
DIR=$(cd -- "$DIR" && pwd -P) # absolute: postgres commands run from /
# Serialize concurrent invocations; fd 9 is closed for every server we launch.
exec 9>"$DIR/.lock"
flock 9

rc=0
STOPPED=()
case $cmd in
up | restart)
	if [[ $cmd == restart ]]; then
		for n in "${names[@]}"; do stop_server "$n" keep; done
	fi
	todo=()
	for n in "${names[@]}"; do running_pid "$n" >/dev/null || todo+=("$n"); done
	((${#todo[@]} == 0)) || ensure_installed "${todo[@]}"
	# Start all in parallel; print results in the requested order.
	declare -A job=()
	for n in "${names[@]}"; do
		up_one "$n" "$fresh" >"$DIR/logs/.up.$n" 2>&1 &
		job[$n]=$!
	done
	for n in "${names[@]}"; do
		wait "${job[$n]}" || rc=1
		cat "$DIR/logs/.up.$n"
		rm -f "$DIR/logs/.up.$n"
	done
	write_env
	;;
down)
	STOPPED=()
	for n in "${names[@]}"; do stop_server "$n" wipe; done
	write_env
	# Exited servers stay zombies until PID 1 reaps them (~1.3 s here): wait, so `ps` is clean after.
	((${#STOPPED[@]} == 0)) || wait_gone 5 "${STOPPED[@]}" || true
	;;
kill)
	for n in "${names[@]}"; do kill_server "$n"; done
	write_env
	;;
status)
	for n in "${names[@]}"; do
		if pid=$(running_pid "$n"); then
			if is_ready "$n"; then
				printf '%-8s running (pid %s) at %s\n' "$n" "$pid" "$(url_of "$n")"
			else
				printf '%-8s running (pid %s) but NOT answering\n' "$n" "$pid"
				rc=1
			fi
		else
			printf '%-8s stopped\n' "$n"
			rc=1
		fi
	done
	write_env
	;;
env)
	write_env
	cat "$DIR/env"
	;;
install) ensure_installed "${names[@]}" ;;
*) die "unknown command: $cmd (up|down|restart|kill|status|env|install)" ;;
esac
exit "$rc"
