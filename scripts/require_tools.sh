#!/usr/bin/env bash
# The system tools a make goal needs, checked before it does any work (called by the Makefile
# while it reads itself, so a missing tool stops make with one line and nothing run).
#
#   scripts/require_tools.sh GOAL TOOL...      TOOL: chromium | npm | venv
#
# chromium  Debian's headless browser, driven by Playwright in the browser tests (make test).
# npm       fetches the widget JavaScript and MathJax the book serves itself (make test checks
#           that the pages work offline, so it needs them; other builds fall back to the CDN).
# venv      python3's venv module with ensurepip (Debian's python3-venv), to create .venv;
#           not checked once .venv/bin/python exists.
#
# A tool that is missing is installed with `apt-get install -y PACKAGE` when this runs as root
# and apt-get exists (its output goes to stderr); otherwise, or when the install fails, the
# script prints ONE line on stdout naming the command to run, and exits 1. Nothing else is
# printed on stdout (make shows it with $(error)).
#
# For the tests: TVAE_CHROMIUM (the browser's path, default /usr/bin/chromium),
# TVAE_REQUIRE_PATH (the PATH in which npm and apt-get are looked up, default $PATH),
# TVAE_INSTALL=no (never install) or yes (install even when not root), TVAE_PYTHON (default
# python3), TVAE_VENV (default .venv).
set -uo pipefail

goal="${1:?usage: $0 GOAL TOOL...}"
shift
chromium="${TVAE_CHROMIUM:-/usr/bin/chromium}"
lookup="${TVAE_REQUIRE_PATH:-$PATH}"
python="${TVAE_PYTHON:-python3}"
venv="${TVAE_VENV:-.venv}"

has() {  # has TOOL: is it there?
    case "$1" in
        chromium) [[ -x "$chromium" ]] ;;
        npm) PATH="$lookup" command -v npm >/dev/null 2>&1 ;;
        venv) [[ -x "$venv/bin/python" ]] || "$python" -c "import ensurepip, venv" >/dev/null 2>&1 ;;
        *) echo "require_tools.sh: unknown tool $1" >&2; return 2 ;;
    esac
}
package() {
    case "$1" in chromium) echo chromium ;; npm) echo npm ;; venv) echo python3-venv ;; esac
}
purpose() {
    case "$1" in
        chromium) echo "Chromium ($chromium) for the browser tests" ;;
        npm) echo "npm to fetch the JavaScript the book serves itself" ;;
        venv) echo "python3's venv module to create .venv" ;;
    esac
}
can_install() {
    case "${TVAE_INSTALL:-auto}" in
        no) return 1 ;;
        yes) PATH="$lookup" command -v apt-get >/dev/null 2>&1 ;;
        *) [[ "$(id -u)" == 0 ]] && PATH="$lookup" command -v apt-get >/dev/null 2>&1 ;;
    esac
}

missing=()
for tool in "$@"; do
    has "$tool" || missing+=("$tool")
done
((${#missing[@]})) || exit 0

packages=()
for tool in "${missing[@]}"; do packages+=("$(package "$tool")"); done
if can_install; then
    echo "make $goal: installing ${packages[*]} with apt-get" >&2
    # Debian's chromium and npm packages; DEBIAN_FRONTEND: no interactive prompt.
    PATH="$lookup:$PATH" DEBIAN_FRONTEND=noninteractive apt-get update >&2 \
        && PATH="$lookup:$PATH" DEBIAN_FRONTEND=noninteractive \
            apt-get install -y --no-install-recommends "${packages[@]}" >&2
    still=()
    for tool in "${missing[@]}"; do has "$tool" || still+=("$tool"); done
    missing=("${still[@]}")
    ((${#missing[@]})) || exit 0
    packages=()
    for tool in "${missing[@]}"; do packages+=("$(package "$tool")"); done
fi

what=()
for tool in "${missing[@]}"; do what+=("$(purpose "$tool")"); done
joined="$(printf '%s and ' "${what[@]}")"
echo "make $goal needs ${joined% and }: run \`sudo apt-get install -y ${packages[*]}\` (or run make as root, which installs it)"
exit 1
