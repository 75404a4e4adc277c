#!/usr/bin/env bash
# Headless Chromium for the fleet report's browser test and screenshot, on a fresh machine too.
#
#   bash scripts/chromium.sh      install Debian's `chromium` if missing (root: apt-get), then
#                                 print the browser's path (the last line of output)
#
# Like scripts/postgres.sh: running it twice is harmless (the second run only prints the path),
# `apt-get update` runs once per install, and apt's chatter goes to stderr. $CHROMIUM names a
# browser to use instead (a chromium or google-chrome binary); nothing is downloaded from the
# web, only the distribution's package.
set -euo pipefail

say() { printf 'chromium.sh: %s\n' "$*" >&2; }
die() {
    say "$*"
    exit 1
}

find_browser() {
    local name
    if [ -n "${CHROMIUM:-}" ]; then
        [ -x "$CHROMIUM" ] || die "CHROMIUM=$CHROMIUM is not an executable"
        printf '%s\n' "$CHROMIUM"
        return 0
    fi
    for name in chromium chromium-browser google-chrome google-chrome-stable; do
        if command -v "$name" >/dev/null 2>&1; then
            command -v "$name"
            return 0
        fi
    done
    return 1
}

install_browser() {
    [ "$(id -u)" -eq 0 ] ||
        die "no Chromium found. Install it as root, e.g. 'sudo apt-get install -y chromium'," \
            "or set CHROMIUM to a chromium binary, then run this again."
    command -v apt-get >/dev/null 2>&1 ||
        die "no Chromium found and no apt-get to install one: install Chromium and set CHROMIUM."
    say "no Chromium found: installing Debian's chromium with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >&2
    apt-get install -y -q --no-install-recommends chromium >&2
}

if ! find_browser >/dev/null; then
    install_browser
fi
find_browser || die "chromium was installed but no chromium binary is on PATH"
