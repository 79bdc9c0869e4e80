# Sourced by the scripts: installs the pinned tools the widget build and the
# browser tests need, only when they are missing, and puts them on PATH.
# Versions: ../shared/TOOLCHAIN.md (trunk 0.22+ needs a newer rustc; Debian's
# and the crate's wasm-opt reject wasm-bindgen 0.2.130 output).

TRUNK_VERSION=0.21.14
WASM_BINDGEN_VERSION=0.2.130
BINARYEN_VERSION=132.0.0
AXE_VERSION=4.14.1
TERSER_VERSION=5.51.4
# The release wasm (panel and console) is built with this pinned nightly:
# it rebuilds Rust's standard library for the wasm with panics that abort at
# once (no panic messages, locations or formatting machinery in the
# download) and the library's size-optimised algorithms. That is 18 KB of
# the panel's 133 KB gzip (scripts/size-report); stable Rust cannot do it.
# Tests, clippy and `trunk serve` stay on the stable toolchain.
WASM_NIGHTLY=nightly-2026-05-20

_ph_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$_ph_root/.tools/node_modules/.bin:$HOME/.cargo/bin:$PATH"

_ph_have_version() { command -v "$1" >/dev/null 2>&1 && "$1" --version 2>/dev/null | grep -q "$2"; }

ensure_widget_tools() {
  if ! rustup run "$WASM_NIGHTLY" rustc --print sysroot >/dev/null 2>&1 ||
     ! rustup +"$WASM_NIGHTLY" component list --installed 2>/dev/null | grep -q '^rust-src' ||
     ! rustup +"$WASM_NIGHTLY" target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
    echo "== installing Rust $WASM_NIGHTLY (rust-src, wasm32) for the release wasm (once; about a minute)"
    rustup toolchain install "$WASM_NIGHTLY" --profile minimal --component rust-src --target wasm32-unknown-unknown
  fi
  if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    echo "== installing the wasm32 target"
    rustup target add wasm32-unknown-unknown
  fi
  if ! _ph_have_version trunk " $TRUNK_VERSION"; then
    echo "== installing trunk $TRUNK_VERSION (once; several minutes)"
    cargo install --locked trunk --version "$TRUNK_VERSION"
  fi
  if ! _ph_have_version wasm-bindgen " $WASM_BINDGEN_VERSION"; then
    echo "== installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (once)"
    # Not --locked: its lock file names a crate version the registry lacks.
    cargo install wasm-bindgen-cli --version "=$WASM_BINDGEN_VERSION"
  fi
  if ! _ph_have_version wasm-opt "version ${BINARYEN_VERSION%%.*}"; then
    echo "== installing wasm-opt (binaryen $BINARYEN_VERSION from npm) into .tools/"
    npm install --silent --no-audit --no-fund --prefix "$_ph_root/.tools" "binaryen@$BINARYEN_VERSION"
  fi
  # terser minifies wasm-bindgen's glue (scripts/slim-glue.mjs).
  if [ ! -f "$_ph_root/.tools/node_modules/terser/package.json" ] ||
     ! grep -q "\"version\": \"$TERSER_VERSION\"" "$_ph_root/.tools/node_modules/terser/package.json"; then
    echo "== installing terser $TERSER_VERSION from npm into .tools/"
    npm install --silent --no-audit --no-fund --save-exact --prefix "$_ph_root/.tools" "terser@$TERSER_VERSION"
  fi
}

ensure_browser() {
  if ! command -v chromium >/dev/null 2>&1; then
    echo "== installing Chromium from Debian"
    (apt-get install -y chromium >/dev/null 2>&1) || (apt-get update >/dev/null && apt-get install -y chromium >/dev/null)
  fi
  export CHROMIUM="${CHROMIUM:-$(command -v chromium)}"
  # A font with Chinese, Japanese and Korean glyphs, so the screenshots of
  # the panel in those languages show text rather than empty boxes
  # (WenQuanYi Micro Hei: 1.6 MB, all three scripts).
  if ! fc-list :lang=ja 2>/dev/null | grep -q .; then
    echo "== installing a CJK font from Debian (fonts-wqy-microhei)"
    _ph_apt fonts-wqy-microhei
  fi
  # axe-core, the accessibility engine the e2e tests run in that Chromium.
  if [ ! -f "$_ph_root/.tools/node_modules/axe-core/axe.min.js" ] ||
     ! grep -q "\"version\": \"$AXE_VERSION\"" "$_ph_root/.tools/node_modules/axe-core/package.json"; then
    echo "== installing axe-core $AXE_VERSION from npm into .tools/"
    npm install --silent --no-audit --no-fund --prefix "$_ph_root/.tools" "axe-core@$AXE_VERSION"
  fi
}

# Debian packages, installed only when their command is missing.
_ph_apt() {
  (apt-get install -y "$@" >/dev/null 2>&1) || (apt-get update >/dev/null && apt-get install -y "$@" >/dev/null)
}

ensure_musl() {
  if ! rustup target list --installed | grep -qx x86_64-unknown-linux-musl; then
    echo "== installing the x86_64-unknown-linux-musl target"
    rustup target add x86_64-unknown-linux-musl
  fi
  if ! command -v musl-gcc >/dev/null 2>&1; then
    echo "== installing musl-tools from Debian (the C parts: SQLite, aws-lc)"
    _ph_apt musl-tools
  fi
}

ensure_nginx() {
  if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
    echo "== installing nginx from Debian"
    _ph_apt nginx-light
  fi
  export NGINX="${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}"
}

ensure_podman() {
  if ! command -v podman >/dev/null 2>&1 || ! command -v runc >/dev/null 2>&1; then
    echo "== installing podman and runc from Debian"
    _ph_apt podman runc
  fi
  # Here crun fails on the cgroups and the default ulimits cannot be set:
  # use runc and no ulimits (../shared/TOOLCHAIN.md).
  export CONTAINERS_CONF="$_ph_root/target/containers.conf"
  mkdir -p "$_ph_root/target"
  printf '[containers]\ndefault_ulimits = []\n[engine]\nruntime = "runc"\n' > "$CONTAINERS_CONF"
}

# PostgreSQL and Redis for the store, limiter and stream-log tests: Debian's
# packages, installed when missing and started when not already running (a
# server already listening is used as it is). Exports the URLs the tests read
# and PORTHOLE_REQUIRE_SERVICES=1, so a test that cannot reach them fails
# instead of skipping.
ensure_postgres() {
  export PORTHOLE_REQUIRE_SERVICES=1
  if [ -n "${PORTHOLE_TEST_DATABASE_URL:-}" ]; then return; fi
  local port=5432
  if ! command -v pg_lsclusters >/dev/null 2>&1; then
    echo "== installing PostgreSQL from Debian"
    _ph_apt postgresql
  fi
  if ! pg_isready -q -h 127.0.0.1 -p "$port"; then
    local version
    version="$(ls /usr/lib/postgresql | sort -n | tail -1)"
    if ! pg_lsclusters -h | awk '{print $1" "$2}' | grep -qx "$version main"; then
      pg_createcluster "$version" main >/dev/null
    fi
    echo "== starting PostgreSQL $version"
    pg_ctlcluster "$version" main start
    for _ in $(seq 1 60); do pg_isready -q -h 127.0.0.1 -p "$port" && break; sleep 0.5; done
  fi
  # A role and a database of the tests' own, made afresh each run (each
  # test makes its own schema in it).
  runuser -u postgres -- psql -q -p "$port" -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
SELECT 'CREATE ROLE porthole LOGIN PASSWORD ''porthole'''
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'porthole') \gexec
DROP DATABASE IF EXISTS porthole_test WITH (FORCE);
CREATE DATABASE porthole_test OWNER porthole;
SQL
  export PORTHOLE_TEST_DATABASE_URL="postgres://porthole:porthole@127.0.0.1:$port/porthole_test"
}

ensure_redis() {
  export PORTHOLE_REQUIRE_SERVICES=1
  if [ -n "${PORTHOLE_TEST_REDIS_URL:-}" ]; then return; fi
  local port=6379
  if ! command -v redis-server >/dev/null 2>&1; then
    echo "== installing Redis from Debian"
    _ph_apt redis-server
  fi
  if ! redis-cli -p "$port" ping >/dev/null 2>&1; then
    echo "== starting Redis"
    mkdir -p "$_ph_root/target"
    redis-server --port "$port" --bind 127.0.0.1 --daemonize yes --save '' --appendonly no \
      --logfile "$_ph_root/target/redis.log" >/dev/null
    for _ in $(seq 1 40); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.25; done
    if ! redis-cli -p "$port" ping >/dev/null 2>&1; then
      echo "Redis did not start; its log: $_ph_root/target/redis.log" >&2
      return 1
    fi
  fi
  export PORTHOLE_TEST_REDIS_URL="redis://127.0.0.1:$port/"
}

# Runs a command (trunk build) with the release wasm's toolchain and flags:
# the pinned nightly, the standard library rebuilt with immediate-abort
# panics and optimize_for_size, no Debug formatting and no panic locations.
# Build scripts and proc macros (host code) are not affected: trunk always
# passes --target, so RUSTFLAGS reach the wasm only.
with_wasm_toolchain() {
  RUSTUP_TOOLCHAIN="$WASM_NIGHTLY" \
  CARGO_UNSTABLE_BUILD_STD="std,panic_abort" \
  CARGO_UNSTABLE_BUILD_STD_FEATURES="optimize_for_size" \
  RUSTFLAGS="-Zunstable-options -Cpanic=immediate-abort -Zfmt-debug=none -Zlocation-detail=none" \
  CARGO_TARGET_DIR="$_ph_root/target/wasm-nightly" \
    "$@"
}
