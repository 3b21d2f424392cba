#!/usr/bin/env bash
# Fetch the JavaScript that renders saved ipywidgets state in the static HTML book, so the
# book serves it itself instead of loading it from a CDN.
#
#   scripts/fetch_widget_js.sh DEST
#
# Uses `npm pack` (the npm registry only, no node_modules, no install scripts) to download
#   @jupyter-widgets/html-manager@$HTML_MANAGER_VERSION  (dist/embed-amd.js + its font files)
#   requirejs@$REQUIREJS_VERSION                         (require.js)
# and copies the needed files into DEST. The version of the html-manager must match the
# widget protocol of the pinned ipywidgets (8.1.9 -> html-manager ^1.0.1, controls ^5.0.13).
#
# Exit status 0 and DEST/VERSIONS written on success; non-zero (DEST untouched) on failure,
# in which case the Makefile builds the book with myst-nb's CDN default instead.
set -euo pipefail

HTML_MANAGER_VERSION="${HTML_MANAGER_VERSION:-1.0.15}"
REQUIREJS_VERSION="${REQUIREJS_VERSION:-2.3.8}"

dest="${1:?usage: $0 DEST}"
if [[ -f "$dest/VERSIONS" ]] && grep -qx "html-manager $HTML_MANAGER_VERSION" "$dest/VERSIONS" \
    && grep -qx "requirejs $REQUIREJS_VERSION" "$dest/VERSIONS"; then
    exit 0  # already fetched
fi
command -v npm >/dev/null 2>&1 || { echo "fetch_widget_js: npm not found" >&2; exit 1; }

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(
    cd "$tmp"
    npm pack --silent --ignore-scripts \
        "@jupyter-widgets/html-manager@$HTML_MANAGER_VERSION" "requirejs@$REQUIREJS_VERSION" \
        >/dev/null 2>npm.log || { cat npm.log >&2; exit 1; }
    mkdir hm rq
    tar -xzf jupyter-widgets-html-manager-"$HTML_MANAGER_VERSION".tgz -C hm
    tar -xzf requirejs-"$REQUIREJS_VERSION".tgz -C rq
)
dist="$tmp/hm/package/dist"
[[ -s "$dist/embed-amd.js" && -s "$tmp/rq/package/require.js" ]] \
    || { echo "fetch_widget_js: unexpected package layout" >&2; exit 1; }

# Assemble in a temporary folder and move it into place, so DEST is never half-written.
new="$tmp/out"
mkdir -p "$new"
cp "$tmp/rq/package/require.js" "$new/require.js"
cp "$dist/embed-amd.js" "$new/embed-amd.js"
# embed-amd.js loads Font Awesome (button icons) relative to its own URL; every current
# browser takes the woff2 (else woff) files, so the eot/ttf/svg copies are left out.
cp "$dist"/*.woff2 "$dist"/*.woff "$new/"
printf 'html-manager %s\nrequirejs %s\n' "$HTML_MANAGER_VERSION" "$REQUIREJS_VERSION" >"$new/VERSIONS"

mkdir -p "$(dirname "$dest")"
rm -rf "$dest"
mv "$new" "$dest"
echo "fetch_widget_js: html-manager $HTML_MANAGER_VERSION and requirejs $REQUIREJS_VERSION in $dest"
