#!/usr/bin/env bash
# Build the PyInstaller one-folder bundle (dist/retina-desktop/) and check it:
#   1. the frozen self-test passes (offscreen); otherwise the build fails,
#   2. the self-test writes nothing inside the bundle,
#   3. launch-to-window time of the frozen app (under xvfb-run when available, else offscreen).
# Prints the build time and the bundle size, and writes them to dist/build-report.txt.
#
# Usage:   packaging/build.sh
# Env:     PYTHON=...            interpreter with the app and pyinstaller installed (pip install -e ".[packaging]");
#                                default .venv/bin/python when present, else python3
#          SELFTEST_WEIGHTS=FILE self-test with this checkpoint instead of the bundled default model
#          NICE=1                run PyInstaller under `nice -n 19` (shared machines)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
NICE_CMD=()
if [ "${NICE:-0}" = "1" ]; then NICE_CMD=(nice -n 19); fi
fail() { echo "build.sh: $*" >&2; exit 1; }

[ -f resources/default_model.pt ] || fail "resources/default_model.pt is missing: the bundle must ship the default model"
"$PYTHON" -c "import PyInstaller" 2>/dev/null || fail "PyInstaller is not installed for $PYTHON (pip install -e '.[packaging]')"
echo "build.sh: $("$PYTHON" -m PyInstaller --version | sed 's/^/PyInstaller /'), $("$PYTHON" --version)"

start=$(date +%s)
"${NICE_CMD[@]}" "$PYTHON" -m PyInstaller --noconfirm --clean --log-level WARN \
  --distpath dist --workpath build packaging/retina-desktop.spec
end=$(date +%s)
build_s=$((end - start))
APP=dist/retina-desktop/retina-desktop
[ -x "$APP" ] || fail "PyInstaller finished but $APP is missing"
size=$(du -sh dist/retina-desktop | cut -f1)
echo "build.sh: built in ${build_s} s, bundle $size (dist/retina-desktop)"

# Self-test of the frozen build; nothing may be written inside the bundle.
find dist/retina-desktop | sort > build/bundle-before.txt
weights=()
if [ -n "${SELFTEST_WEIGHTS:-}" ]; then weights=(--weights "$SELFTEST_WEIGHTS"); fi
echo "build.sh: running the frozen self-test"
if ! QT_QPA_PLATFORM=offscreen timeout 900 "$APP" --self-test "${weights[@]}"; then
  fail "the self-test of the frozen build FAILED"
fi
find dist/retina-desktop | sort > build/bundle-after.txt
if ! diff -u build/bundle-before.txt build/bundle-after.txt; then
  fail "the self-test wrote files inside the bundle (see the diff above)"
fi

# Launch-to-window time, on a real X server when xvfb-run exists (falls back to offscreen).
startup=""
if command -v xvfb-run >/dev/null 2>&1; then
  startup=$(env -u QT_QPA_PLATFORM timeout 600 xvfb-run -a "$APP" --measure-startup "${weights[@]}" 2>/dev/null || true)
fi
if [ -z "$startup" ] || ! grep -q "window shown" <<<"$startup"; then
  startup=$(QT_QPA_PLATFORM=offscreen timeout 600 "$APP" --measure-startup "${weights[@]}" 2>/dev/null || true)
fi
echo "$startup"

{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "host: $(uname -srm), $(nproc) CPUs"
  echo "build time: ${build_s} s"
  echo "bundle size: $size"
  echo "frozen self-test: passed"
  echo "$startup"
} > dist/build-report.txt
echo "build.sh: OK — report in $ROOT/dist/build-report.txt"
