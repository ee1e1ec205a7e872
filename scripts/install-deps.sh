#!/bin/sh
# Install what building and testing duplex needs on Debian 12, skipping what is
# already there. Runs apt-get as root, or through sudo when not root.
set -e
pkgs="make gcc clang clang-format libclang-rt-14-dev libssl-dev zlib1g-dev pkg-config python3 python3-websockets"
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
echo "install-deps: installing$missing"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing >/dev/null
