#!/usr/bin/env bash
# Smoke test of a built app: `--version`, the command line, and an offscreen start that shows
# the window, opens the similar view for a photo and quits by itself.
#
#   installer/smoke_test.sh [dist/photosim]
#
# With SMOKE_WEIGHTS=FILE (a MobileNetV3-Large state_dict; build.sh makes a random one) it also
# scans with that model on the CPU: the frozen torch, torchvision and their C++ operators load.
#
# Runs in a private HOME, catalog and runtime folder, so it neither reads the user's catalog
# nor hands its request to a photosim that is already running.
set -euo pipefail
cd "$(dirname "$0")/.."

app_dir=${1:-dist/photosim}
exe="$app_dir/photosim"
[ -x "$exe" ] || { echo "smoke_test.sh: no executable at $exe" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/home" "$work/photos" "$work/run"
chmod 700 "$work/run"
export HOME="$work/home" XDG_CONFIG_HOME="$work/home/.config" XDG_DATA_HOME="$work/home/share" \
    XDG_STATE_HOME="$work/home/state" XDG_CACHE_HOME="$work/home/cache" \
    XDG_RUNTIME_DIR="$work/run" PHOTOSIM_CATALOG="$work/catalog.db" QT_QPA_PLATFORM=offscreen \
    PHOTOSIM_OFFLINE=1 TORCH_HOME="$work/torch"
mkdir -p "$XDG_CONFIG_HOME/photosim"
printf '[settings]\nmodel=none\nworkers=1\n' > "$XDG_CONFIG_HOME/photosim/photosim.conf"

echo "== $exe --version"
version=$("$exe" --version)
echo "$version"
[[ $version == photosim\ * ]]

# Photos as tiny PPM (netpbm) files: no Python or Pillow needed outside the app.
ppm() {  # $1: path, $2: seed -> a 64x48 colour gradient (bytes 1..255: awk cannot print NUL)
    LC_ALL=C awk -v s="$2" 'BEGIN { w = 64; h = 48; printf "P6\n%d %d\n255\n", w, h
        for (y = 0; y < h; y++) for (x = 0; x < w; x++)
            printf "%c%c%c", (x * 4 + s) % 255 + 1, (y * 5 + x) % 255 + 1, (x * y + s) % 255 + 1 }' > "$1"
}
ppm "$work/photos/a.ppm" 7
cp "$work/photos/a.ppm" "$work/photos/a copy.ppm"
ppm "$work/photos/b.ppm" 91

echo "== $exe scan (command line, hash-only)"
"$exe" scan "$work/photos" --model none --workers 1 -q

if [ -n "${SMOKE_WEIGHTS:-}" ]; then
    echo "== $exe scan with a CNN (frozen torch and torchvision, CPU)"
    out=$("$exe" scan "$work/photos" --model mobilenet_v3_large --weights "$SMOKE_WEIGHTS" \
        --device cpu --workers 1 -q 2>&1)
    echo "$out"
    grep -q "descriptors [1-9]" <<<"$out"
fi

echo "== $exe search (reads the bundled WordNet vocabulary)"
set +e
out=$("$exe" search qwxzv 2>&1)
rc=$?
set -e
echo "$out"
[ "$rc" -eq 2 ] && grep -q "no tag matches 'qwxzv'" <<<"$out"

echo "== offscreen start: window, similar view, exit"
out=$(PHOTOSIM_EXIT_AFTER_SHOW=1 timeout 120 "$exe" --find-similar --untrusted-args "$work/photos/a.ppm" 2>&1)
echo "$out"
grep -q "first window shown after" <<<"$out"
grep -q "similar view: $work/photos/a.ppm: [1-9]" <<<"$out"
echo "== smoke test passed"
