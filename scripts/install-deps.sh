#!/bin/sh
# Install what building and testing duplex needs on Debian 12, skipping what is
# already there. Runs apt-get as root, or through sudo when not root. Then the
# Node packages of package.json (ws, and playwright-core to drive Debian's
# chromium, for tests/interop/*.js) into node_modules/. No browser is downloaded:
# tests/interop/browser_chromium.js uses /usr/bin/chromium.
set -e
cd "$(dirname "$0")/.."
pkgs="make gcc clang clang-format libclang-rt-14-dev libssl-dev zlib1g-dev pkg-config python3 python3-websockets tinyproxy chromium"
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
# Node and npm from Debian unless some node is already on PATH (e.g. NodeSource's).
command -v npm >/dev/null 2>&1 || missing="$missing nodejs npm"
if [ -n "$missing" ]; then
    if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
    echo "install-deps: installing$missing"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing >/dev/null
fi
if [ ! -f node_modules/ws/package.json ] || [ ! -f node_modules/playwright-core/package.json ]; then
    echo "install-deps: npm packages"
    if [ -f package-lock.json ]; then
        npm ci --no-audit --no-fund
    else
        npm install --no-audit --no-fund
    fi
fi
