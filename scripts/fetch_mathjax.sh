#!/usr/bin/env bash
# Fetch MathJax 3 so that the book typesets its equations without a CDN (offline, file://).
#
#   scripts/fetch_mathjax.sh DEST
#
# `npm pack mathjax@$MATHJAX_VERSION` (the npm registry only, nothing installed) and copy the
# combined component Sphinx uses by default (es5/tex-mml-chtml.js) with what it loads on
# demand: CHTML fonts, TeX extensions (autoloaded macros), the context menu and the assistive
# MathML. Left out: the SVG output, the "full" bundles and the speech engine (about 20 MB).
# Exit status 0 with DEST/VERSIONS written on success; non-zero (DEST untouched) on failure,
# in which case the book uses Sphinx's CDN default.
set -euo pipefail

MATHJAX_VERSION="${MATHJAX_VERSION:-3.2.2}"
dest="${1:?usage: $0 DEST}"
if [[ -f "$dest/VERSIONS" ]] && grep -qx "mathjax $MATHJAX_VERSION" "$dest/VERSIONS"; then
    exit 0  # already fetched
fi
command -v npm >/dev/null 2>&1 || { echo "fetch_mathjax: npm not found" >&2; exit 1; }

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(
    cd "$tmp"
    npm pack --silent --ignore-scripts "mathjax@$MATHJAX_VERSION" >/dev/null 2>npm.log \
        || { cat npm.log >&2; exit 1; }
    mkdir mj
    tar -xzf mathjax-"$MATHJAX_VERSION".tgz -C mj
)
es5="$tmp/mj/package/es5"
[[ -s "$es5/tex-mml-chtml.js" ]] || { echo "fetch_mathjax: unexpected package layout" >&2; exit 1; }

new="$tmp/out"
mkdir -p "$new/output/chtml" "$new/input/tex"
cp "$es5/tex-mml-chtml.js" "$new/"
cp -r "$es5/output/chtml/fonts" "$new/output/chtml/"
cp -r "$es5/input/tex/extensions" "$new/input/tex/"
cp -r "$es5/ui" "$es5/a11y" "$es5/adaptors" "$new/"
cp "$tmp/mj/package/LICENSE" "$new/LICENSE" 2>/dev/null || true
printf 'mathjax %s\n' "$MATHJAX_VERSION" >"$new/VERSIONS"

mkdir -p "$(dirname "$dest")"
rm -rf "$dest"
mv "$new" "$dest"
echo "fetch_mathjax: mathjax $MATHJAX_VERSION in $dest"
