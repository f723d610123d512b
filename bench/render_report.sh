#!/usr/bin/env bash
# Build a sweep's report and screenshot its HTML in headless Chromium, to look at it as a reader would.
#
#   bench/render_report.sh SWEEP_DIR [OUT_PNG] [WIDTH,HEIGHT]
#
# Writes SWEEP_DIR/report/ (report.md, report.html, tables, plots) and the screenshot (default:
# SWEEP_DIR/report/screenshot.png, window 1200,2400; the page below that height is cut off, so give a taller
# window for a long report). Needs Chromium (Debian: apt-get install -y chromium); PYTHON picks the interpreter.
# Chromium runs offline-safe: no sandbox (root in a container), no GPU, no background networking or updates.
set -euo pipefail
if [[ $# -lt 1 ]]; then
    echo "usage: $0 SWEEP_DIR [OUT_PNG] [WIDTH,HEIGHT]" >&2
    exit 2
fi
sweep=$(cd "$1" && pwd)
out=${2:-$sweep/report/screenshot.png}
size=${3:-1200,2400}
python=${PYTHON:-python}
"$python" -c 'import sys; from yolo_gd.report import build_report; print(build_report(sys.argv[1]).html)' "$sweep"
browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [[ -z "$browser" ]]; then
    echo "no chromium found: apt-get install -y chromium (the report itself is written)" >&2
    exit 1
fi
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
"$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
    --disable-component-update --disable-sync --hide-scrollbars --user-data-dir="$profile" \
    --screenshot="$out" --window-size="$size" "file://$sweep/report/report.html" 2>/dev/null
echo "$out"
