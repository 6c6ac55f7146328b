#!/usr/bin/env bash
# Install the built bundle for the current user (no root): the app under ~/.local/opt/retina-desktop,
# a menu entry and the icon in every size. Run after packaging/build.sh, or from an unpacked bundle:
#   packaging/install_linux.sh [BUNDLE_DIR]     (default: dist/retina-desktop)
# Remove with:  packaging/install_linux.sh --uninstall
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
PREFIX=${PREFIX:-$HOME/.local}
DATA=${XDG_DATA_HOME:-$HOME/.local/share}
DEST="$PREFIX/opt/retina-desktop"
SIZES="16 24 32 48 64 128 256 512"

if [ "${1:-}" = "--uninstall" ]; then
  rm -rf "$DEST" "$PREFIX/bin/retina-desktop" "$DATA/applications/retina-desktop.desktop"
  for s in $SIZES; do rm -f "$DATA/icons/hicolor/${s}x${s}/apps/retina-desktop.png"; done
  rm -f "$DATA/icons/hicolor/scalable/apps/retina-desktop.svg"
  echo "Retina Desktop removed (your settings and workspaces are kept)."
  exit 0
fi

BUNDLE=${1:-$ROOT/dist/retina-desktop}
[ -x "$BUNDLE/retina-desktop" ] || { echo "no bundle at $BUNDLE (run packaging/build.sh first)" >&2; exit 1; }
rm -rf "$DEST" && mkdir -p "$DEST" "$PREFIX/bin" "$DATA/applications"
cp -a "$BUNDLE/." "$DEST/"
ln -sf "$DEST/retina-desktop" "$PREFIX/bin/retina-desktop"
ICONS="$ROOT/resources/icons"
for s in $SIZES; do
  install -Dm644 "$ICONS/retina-desktop-$s.png" "$DATA/icons/hicolor/${s}x${s}/apps/retina-desktop.png"
done
install -Dm644 "$ICONS/retina-desktop.svg" "$DATA/icons/hicolor/scalable/apps/retina-desktop.svg"
# Absolute Exec/TryExec: ~/.local/bin is not on every desktop session's PATH.
sed -e "s|^Exec=retina-desktop|Exec=$DEST/retina-desktop|" -e "s|^TryExec=retina-desktop|TryExec=$DEST/retina-desktop|" \
  "$HERE/retina-desktop.desktop" > "$DATA/applications/retina-desktop.desktop"
command -v update-desktop-database >/dev/null && update-desktop-database "$DATA/applications" || true
command -v gtk-update-icon-cache >/dev/null && gtk-update-icon-cache -q "$DATA/icons/hicolor" || true
echo "Installed to $DEST; 'Retina Desktop' is in the applications menu."
