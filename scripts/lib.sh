# Shared by scripts/setup, scripts/test and scripts/demo. Source it; do not run it.
# Finds or installs Odoo 18, builds the virtualenv and runs a private PostgreSQL cluster.

set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/ai_cost_optimizer"
VENV="$CACHE_DIR/venv"
PY="$VENV/bin/python"
RUN_DIR="$REPO_ROOT/.run"
PGDATA_DIR="$REPO_ROOT/.pgdata"
PG_SOCKET_DIR="$RUN_DIR/pgsocket"
PG_PORT="${AI_COST_PG_PORT:-55432}"
# The suite's cluster trades durability for speed: a crash of the machine loses nothing a test needs. The
# benchmarks run on a durable cluster of their own (pg_use_durable_cluster), where a commit costs what it costs
# in production.
PG_CLUSTER_NAME=data
PG_SPEED_SETTINGS="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
DEFAULT_ODOO_SRC="https://nightly.odoo.com/18.0/nightly/src/odoo_18.0.latest.tar.gz"
APT_UPDATED=0

say() { printf '[ai_cost] %s\n' "$*"; }
die() { printf '[ai_cost] FAILED: %s\n' "$*" >&2; exit 1; }

# Runs one named step; a failure names the step and shows the tail of its log.
step() {
    local name="$1"; shift
    local log="$RUN_DIR/step.log"
    mkdir -p "$RUN_DIR"
    say "$name ..."
    local started=$SECONDS
    if ! "$@" >"$log" 2>&1; then
        tail -n 30 "$log" >&2
        die "step '$name' failed (full log: $log)"
    fi
    say "$name done in $((SECONDS - started)) s"
}

apt_install() {
    [ "$APT_UPDATED" = 1 ] || { apt-get update -qq; APT_UPDATED=1; }
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
}

ensure_system_packages() {
    local missing=()
    local pkg
    for pkg in libpq-dev libldap2-dev libsasl2-dev chromium; do
        dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done
    pg_bin_dir >/dev/null 2>&1 || missing+=(postgresql)
    command -v curl >/dev/null || missing+=(curl)
    if [ "${#missing[@]}" -gt 0 ]; then
        command -v apt-get >/dev/null || die "missing system packages (${missing[*]}) and no apt-get to install them"
        step "apt-get install ${missing[*]}" apt_install "${missing[@]}"
    fi
}

pg_bin_dir() {
    local dir
    for dir in /usr/lib/postgresql/*/bin; do
        [ -x "$dir/initdb" ] && { echo "$dir"; return 0; }
    done
    return 1
}

# Prints an existing Odoo source tree: ODOO_PATH, an importable odoo, /opt/odoo18, else fails.
find_odoo_tree() {
    if [ -n "${ODOO_PATH:-}" ]; then
        [ -f "$ODOO_PATH/odoo-bin" ] || die "ODOO_PATH=$ODOO_PATH holds no odoo-bin"
        echo "$ODOO_PATH"; return 0
    fi
    local imported
    if imported="$(python3 -c 'import odoo, os; print(os.path.dirname(os.path.dirname(odoo.__file__)))' 2>/dev/null)" \
        && [ -f "$imported/odoo-bin" ]; then
        echo "$imported"; return 0
    fi
    [ -f /opt/odoo18/odoo-bin ] && { echo /opt/odoo18; return 0; }
    return 1
}

# The fingerprint of a source tarball: the checksum of a file, so that a tarball changed in place is
# noticed (its size and date may not change); a URL stands for itself.
src_fingerprint() {
    local src="$1"
    if [ -f "$src" ]; then
        sha256sum "$src" | cut -d' ' -f1
    else
        echo "$src"
    fi
}

extract_odoo() {
    local src="$1" dest="$CACHE_DIR/odoo"
    local archive="$src"
    if [ ! -f "$src" ]; then
        archive="$CACHE_DIR/odoo_src.tar"
        curl -fL --retry 3 -o "$archive" "$src"
    fi
    rm -rf "$dest.tmp"; mkdir -p "$dest.tmp"
    tar -xaf "$archive" -C "$dest.tmp" --strip-components=1
    rm -rf "$dest"; mv "$dest.tmp" "$dest"
}

# Installs Odoo from ODOO_SRC into the cache, once per tarball (by checksum).
install_odoo_from_src() {
    local src="$1"
    mkdir -p "$CACHE_DIR"
    local stamp="$CACHE_DIR/odoo.stamp" want
    want="$(src_fingerprint "$src")"
    if [ -f "$CACHE_DIR/odoo/odoo-bin" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
        say "Odoo source from $src already extracted in $CACHE_DIR/odoo, skipping"
    else
        step "extract Odoo 18 from $src" extract_odoo "$src"
        echo "$want" >"$stamp"
    fi
}

# The lock of this Python: every package of the virtualenv, transitive ones included, at the version the
# suite passed with (made by 'scripts/test --latest', see the README). One per Python minor version,
# since Odoo's requirements differ by Python.
lock_file() {
    echo "$REPO_ROOT/requirements-py$(python3 -c 'import sys; print(f"{sys.version_info[0]}{sys.version_info[1]}")').lock"
}

# Odoo's requirements as this Python can build them: cbor2 5.4.2 (Odoo's pin below 3.12) does not
# build on 3.11.
odoo_requirements() {
    sed -e "s/^cbor2==5.4.2.*/cbor2==5.6.5 ; python_version < '3.12'/" "$1/requirements.txt"
}

# The packages that build psycopg2 and python-ldap without build isolation (setuptools<70: Odoo's
# pin), at the lock's versions when there is a lock; into the virtualenv given (VENV by default).
install_build_tools() {
    local lock="${1:-}" venv="${2:-$VENV}"
    if [ -n "$lock" ]; then
        "$venv/bin/pip" install -q $(grep -E '^(pip|setuptools|wheel|Cython)==' "$lock")
    else
        "$venv/bin/pip" install -q --upgrade 'setuptools<70' wheel Cython
    fi
}

# The virtualenv (VENV, or the one given) exactly as the lock says: no resolution, no package the lock
# does not name.
build_locked_venv() {
    local lock="$1" venv="${2:-$VENV}"
    rm -rf "$venv"
    python3 -m venv "$venv"
    install_build_tools "$lock" "$venv"
    "$venv/bin/pip" install -q --no-deps --no-build-isolation -r "$lock"
    "$venv/bin/pip" check
}

# The virtualenv with the newest releases that Odoo's and the project's requirements admit.
build_latest_venv() {
    local odoo_tree="$1"
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    install_build_tools
    odoo_requirements "$odoo_tree" >"$CACHE_DIR/odoo-requirements.txt"
    "$VENV/bin/pip" install -q --no-build-isolation -r "$CACHE_DIR/odoo-requirements.txt"
    "$VENV/bin/pip" install -q --upgrade -r "$REPO_ROOT/requirements.txt"
}

# Builds the virtualenv from the lock once per (lock, Odoo requirements, Python); with no lock for this
# Python, from the newest releases, and says so.
ensure_venv() {
    local odoo_tree="$1" lock
    lock="$(lock_file)"
    if [ ! -f "$lock" ]; then
        say "WARNING: no $(basename "$lock") for $(python3 -V 2>&1): installing the newest releases, not the tested ones"
        ensure_latest_venv "$odoo_tree"
        return 0
    fi
    ensure_locked_venv "$VENV" "$lock" "$odoo_tree"
}

# Builds the virtualenv `venv` exactly as `lock`, once per (lock, Odoo requirements, Python): the stamp
# beside it (venv.stamp for venv) holds their checksum.
ensure_locked_venv() {
    local venv="$1" lock="$2" odoo_tree="$3" stamp want
    stamp="$CACHE_DIR/$(basename "$venv").stamp"
    want="lock $(cat "$lock" "$odoo_tree/requirements.txt" | sha256sum | cut -d' ' -f1) $(python3 -V 2>&1)"
    if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
        say "virtualenv $venv matches ${lock#"$REPO_ROOT"/}, skipping"
        return 0
    fi
    step "build virtualenv $venv exactly as ${lock#"$REPO_ROOT"/} (about 1-2 minutes)" build_locked_venv "$lock" "$venv"
    echo "$want" >"$stamp"
}

# The benchmarks' virtualenv (venv-bench): the lock of the suite plus the benchmarks' own packages (LiteLLM's
# and the openai SDK, the reference arms of bench/gateway_overhead.py), exactly as bench/requirements-pyXY.lock
# says. The addon never imports them: they are no requirement of it. Sets VENV and PY to it.
ensure_bench_venv() {
    local odoo_tree="$1" lock
    lock="$REPO_ROOT/bench/$(basename "$(lock_file)")"
    [ -f "$lock" ] || die "no ${lock#"$REPO_ROOT"/} for $(python3 -V 2>&1): make one as bench/requirements.txt says"
    ensure_locked_venv "$CACHE_DIR/venv-bench" "$lock" "$odoo_tree"
    VENV="$CACHE_DIR/venv-bench"
    PY="$VENV/bin/python"
}

# A virtualenv of its own (venv-latest) with today's newest releases, built anew once per run (the
# newest releases change from day to day); the scripts that run calls (scripts/odoo-pytest) reuse it.
ensure_latest_venv() {
    local odoo_tree="$1"
    VENV="$CACHE_DIR/venv-latest"
    PY="$VENV/bin/python"
    if [ "${AI_COST_LATEST_BUILT:-}" = "$VENV" ] && [ -x "$PY" ]; then
        return 0
    fi
    step "build virtualenv $VENV with the newest releases of Odoo's and the project's requirements" \
        build_latest_venv "$odoo_tree"
    export AI_COST_LATEST_BUILT="$VENV"
}

# Sets and exports ODOO_TREE, installing Odoo from ODOO_SRC when no tree is found.
# Returns 1 (pure tier only) when no tree is found and the default download is not reachable.
setup_odoo() {
    if ODOO_TREE="$(find_odoo_tree)"; then
        say "using the Odoo tree at $ODOO_TREE"
    elif [ -n "${ODOO_SRC:-}" ]; then
        install_odoo_from_src "$ODOO_SRC"
        ODOO_TREE="$CACHE_DIR/odoo"
    elif [ -f "$CACHE_DIR/odoo/odoo-bin" ]; then
        ODOO_TREE="$CACHE_DIR/odoo"
        say "using the Odoo tree installed earlier in $ODOO_TREE"
    elif curl -fsI --max-time 10 "$DEFAULT_ODOO_SRC" >/dev/null 2>&1; then
        install_odoo_from_src "$DEFAULT_ODOO_SRC"
        ODOO_TREE="$CACHE_DIR/odoo"
    else
        ODOO_SKIP_REASON="no Odoo found (ODOO_PATH unset, no importable odoo, no /opt/odoo18), ODOO_SRC unset and $DEFAULT_ODOO_SRC unreachable"
        export ODOO_SKIP_REASON
        return 1
    fi
    ensure_system_packages
    if [ "${AI_COST_LATEST:-0}" = 1 ]; then ensure_latest_venv "$ODOO_TREE"; else ensure_venv "$ODOO_TREE"; fi
    export ODOO_TREE
}

# Writes the virtualenv's packages, every one pinned, as a lock (to stdout).
freeze_lock() {
    printf '# Every package of the virtualenv at the version the suite passed with, for %s.\n' "$(python3 -V 2>&1)"
    printf '# Installed exactly (pip --no-deps) by scripts/lib.sh; made anew by scripts/test --latest.\n'
    "$VENV/bin/pip" freeze --all --exclude-editable | sort -f
}

# Prints the versions of the newest-releases run beside the lock's, and keeps them as a candidate lock.
report_latest_versions() {
    local lock candidate
    lock="$(lock_file)"
    candidate="$RUN_DIR/$(basename "$lock" .lock)-latest.lock"
    freeze_lock >"$candidate"
    say "newest releases this run used (package: lock -> newest; new packages and dropped ones included):"
    "$PY" - "$lock" "$candidate" <<'PY'
import sys
def read(path):
    try:
        lines = open(path).read().splitlines()
    except FileNotFoundError:
        return {}
    pins = (line.split("==", 1) for line in lines if "==" in line and not line.startswith("#"))
    return {name.lower(): version for name, version in pins}
locked, newest = read(sys.argv[1]), read(sys.argv[2])
changed = sorted(name for name in locked.keys() | newest.keys() if locked.get(name) != newest.get(name))
for name in changed:
    print(f"  {name}: {locked.get(name, '-')} -> {newest.get(name, '-')}")
print(f"  {len(changed)} of {len(newest)} packages differ from {sys.argv[1].rsplit('/', 1)[-1]}")
PY
    say "all versions of this run: $candidate (copy it over $(basename "$lock") to adopt them once the suite passes)"
}

# Pure tier only: a small virtualenv of the project's requirements, beside Odoo's, at the lock's
# versions (the newest ones with AI_COST_LATEST=1).
ensure_pure_venv() {
    VENV="$CACHE_DIR/venv-pure"
    PY="$VENV/bin/python"
    local lock constraint=() want
    lock="$(lock_file)"
    [ "${AI_COST_LATEST:-0}" = 1 ] || [ ! -f "$lock" ] || constraint=(-c "$lock")
    want="$(cat "$REPO_ROOT/requirements.txt" "${constraint[@]:1}" | sha256sum | cut -d' ' -f1) $(python3 -V 2>&1)"
    if [ "${AI_COST_LATEST:-0}" != 1 ] && [ -x "$PY" ] && [ "$(cat "$VENV.stamp" 2>/dev/null)" = "$want" ]; then
        say "virtualenv $VENV is up to date, skipping"
        return 0
    fi
    mkdir -p "$CACHE_DIR"
    step "build virtualenv $VENV with the project's requirements" \
        bash -c "rm -rf '$VENV' && python3 -m venv '$VENV' && '$VENV/bin/pip' install -q -r '$REPO_ROOT/requirements.txt' ${constraint[*]}"
    echo "$want" >"$VENV.stamp"
}

# Where the private cluster lives. A normal user keeps it in the checkout (.pgdata, socket in
# .run/pgsocket). Root must run it as 'postgres' (PostgreSQL refuses root), and 'postgres' may not
# be able to enter the checkout (a clone in /root or in a mktemp -d folder): as root the cluster
# lives in postgres's home instead, one folder per checkout path. A root cluster made in the
# checkout by an earlier version of this script stays where it is.
pg_locate() {
    [ "$(id -u)" = 0 ] && [ ! -f "$PGDATA_DIR/PG_VERSION" ] || return 0
    local home
    home="$(getent passwd postgres | cut -d: -f6)" || true
    [ -d "$home" ] || die "as root the cluster runs as user 'postgres', which is missing or has no home folder"
    PG_CLUSTER_DIR="$home/ai_cost_optimizer/$(printf '%s' "$REPO_ROOT" | sha256sum | cut -c1-12)"
    PGDATA_DIR="$PG_CLUSTER_DIR/$PG_CLUSTER_NAME"
    PG_SOCKET_DIR="$PG_CLUSTER_DIR/socket"
    install -d -o postgres -g postgres -m 700 "$home/ai_cost_optimizer" "$PG_CLUSTER_DIR" "$PG_SOCKET_DIR"
}

# Runs a PostgreSQL program as the cluster's owner: as root that is 'postgres', from '/' since
# 'postgres' may not be able to read the current folder.
pg_as_owner() {
    if [ "$(id -u)" = 0 ]; then
        (cd / && runuser -u postgres -- "$@")
    else
        "$@"
    fi
}

# Starts the private cluster unless it already runs; PG_STARTED_HERE tells pg_stop whether to stop it.
pg_start() {
    local bin
    bin="$(pg_bin_dir)" || die "no PostgreSQL binaries found"
    pg_locate
    mkdir -p "$RUN_DIR" "$PG_SOCKET_DIR"
    # The socket folder in the checkout of a root cluster made earlier may have been made again by root.
    [ "$(id -u)" != 0 ] || chown postgres "$PG_SOCKET_DIR"
    export PGHOST="$PG_SOCKET_DIR" PGPORT="$PG_PORT" PGUSER=odoo
    PG_STARTED_HERE=0
    if [ -f "$PGDATA_DIR/PG_VERSION" ] && pg_ctl_run status >/dev/null 2>&1; then
        say "PostgreSQL already running on socket $PG_SOCKET_DIR port $PG_PORT"
        return 0
    fi
    if [ ! -f "$PGDATA_DIR/PG_VERSION" ]; then
        say "initdb a private PostgreSQL cluster in $PGDATA_DIR"
        pg_as_owner "$bin/initdb" -D "$PGDATA_DIR" -U odoo --auth=trust -E UTF8 --locale=C.UTF-8 >"$RUN_DIR/initdb.log" 2>&1 \
            || { cat "$RUN_DIR/initdb.log" >&2; die "initdb failed"; }
    fi
    # The server log is in the data folder: its owner can always write there.
    if ! pg_ctl_run start -w -t 60 -l "$PGDATA_DIR/server.log" \
        -o "-k $PG_SOCKET_DIR -p $PG_PORT -c listen_addresses='' $PG_SPEED_SETTINGS -c max_connections=200" \
        >/dev/null; then
        # Another run may have started it at the same moment.
        sleep 2
        pg_ctl_run status >/dev/null 2>&1 || { tail -n 20 "$PGDATA_DIR/server.log" >&2; die "PostgreSQL did not start"; }
        return 0
    fi
    PG_STARTED_HERE=1
    say "PostgreSQL running on socket $PG_SOCKET_DIR port $PG_PORT"
}

# Makes pg_start and pg_stop use the durable cluster, PostgreSQL's default settings, beside the suite's:
# its own data folder and port (AI_COST_BENCH_PG_PORT, by default the suite's port plus one).
pg_use_durable_cluster() {
    PG_CLUSTER_NAME=data-durable
    PGDATA_DIR="$REPO_ROOT/.pgdata-durable"
    PG_PORT="${AI_COST_BENCH_PG_PORT:-$((PG_PORT + 1))}"
    PG_SPEED_SETTINGS=""
}

pg_ctl_run() {
    pg_as_owner "$(pg_bin_dir)/pg_ctl" -D "$PGDATA_DIR" "$@"
}

pg_stop() {
    [ "${PG_STARTED_HERE:-0}" = 1 ] && [ -f "$PGDATA_DIR/postmaster.pid" ] || return 0
    pg_ctl_run stop -m fast -w >/dev/null 2>&1 || true
}
