# Sourced by the scripts: installs the pinned tools the widget build and the
# browser tests need, only when they are missing, and puts them on PATH.
# Versions: ../shared/TOOLCHAIN.md (trunk 0.22+ needs a newer rustc; Debian's
# and the crate's wasm-opt reject wasm-bindgen 0.2.130 output).

TRUNK_VERSION=0.21.14
WASM_BINDGEN_VERSION=0.2.130
BINARYEN_VERSION=132.0.0

_ph_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$_ph_root/.tools/node_modules/.bin:$HOME/.cargo/bin:$PATH"

_ph_have_version() { command -v "$1" >/dev/null 2>&1 && "$1" --version 2>/dev/null | grep -q "$2"; }

ensure_widget_tools() {
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
}

ensure_browser() {
  if ! command -v chromium >/dev/null 2>&1; then
    echo "== installing Chromium from Debian"
    (apt-get install -y chromium >/dev/null 2>&1) || (apt-get update >/dev/null && apt-get install -y chromium >/dev/null)
  fi
  export CHROMIUM="${CHROMIUM:-$(command -v chromium)}"
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
