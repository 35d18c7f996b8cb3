#!/usr/bin/env bash
# Frame prep per frame: ours (Rust) against the seed's Python approach, on the same images,
# in one run on this machine.
#
#   benches/compare.sh [FRAMES]        (default 300 frames per measurement)
#
# Images: every eval/images photo stretched to 1280x720 and saved as a q90 JPEG with full
# chroma (4:4:4), made by `cargo bench --bench prep_cli -- make` (the set every figure in
# BENCHMARKS.md uses); then the same frames re-saved by Pillow as q90 4:2:2, which is what a
# UVC webcam's MJPEG frame is (half the chroma data to decode). Both sides read the files into
# memory first and time only the work on the bytes.
#
# Python (the seed): Pillow opens the JPEG, saves it as JPEG at q80, base64 - NO downscale,
# the full 1280x720 goes to the model. Ours: decode, downscale to 768 px (fast_image_resize,
# Hamming), JPEG q80, base64. Because the downscale is part of what we do and the seed does
# not, we also print ours without the downscale (same work as Python), and Pillow with the
# same downscale (resize to 768x432, Hamming) for reference.
#
# Pillow is installed into a throwaway venv (for this comparison only; the project does not
# use Python). Set PILLOW_VENV=/path/to/venv to reuse one that has Pillow.
set -euo pipefail
cd "$(dirname "$0")/.."
FRAMES=${1:-300}
WORK=$(mktemp -d /tmp/gemmaedge-compare.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

VENV=${PILLOW_VENV:-$WORK/venv}
if ! "$VENV/bin/python" -c 'import PIL' 2>/dev/null; then
    echo "installing Pillow into $VENV (comparison only) ..." >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q pillow >&2
fi

echo "== machine: $(uname -m), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
cargo bench -q --bench prep_cli -- make "$WORK/frames" >/dev/null
mkdir -p "$WORK/frames422"
"$VENV/bin/python" - "$WORK/frames" "$WORK/frames422" <<'PY'
import os, sys
from PIL import Image
src, dst = sys.argv[1], sys.argv[2]
for f in sorted(os.listdir(src)):
    Image.open(os.path.join(src, f)).save(os.path.join(dst, f), "JPEG", quality=90, subsampling=1)
PY

py_time() { # py_time DIR OUT
"$VENV/bin/python" - "$1" "$FRAMES" <<'PY' | tee "$2" | grep -v '^RESULT'
import base64, io, os, sys, time
from PIL import Image, features

d, frames = sys.argv[1], int(sys.argv[2])
blobs = [open(os.path.join(d, f), "rb").read() for f in sorted(os.listdir(d)) if f.endswith(".jpg")]
n = len(blobs)
print(f"{n} images, {frames} frames per line, libjpeg-turbo: {features.check_feature('libjpeg_turbo')}")

def seed(b):
    img = Image.open(io.BytesIO(b))
    out = io.BytesIO()
    img.save(out, "JPEG", quality=80)
    return base64.b64encode(out.getvalue())

def seed_loaded(b):
    img = Image.open(io.BytesIO(b))
    img.load()
    out = io.BytesIO()
    img.save(out, "JPEG", quality=80)
    return base64.b64encode(out.getvalue())

def downscaled(b):
    img = Image.open(io.BytesIO(b)).convert("RGB")
    img = img.resize((768, 432), Image.Resampling.HAMMING)
    out = io.BytesIO()
    img.save(out, "JPEG", quality=80)
    return base64.b64encode(out.getvalue())

def ms_per_frame(f):
    for i in range(min(frames, 10)):
        f(blobs[i % n])
    t0 = time.perf_counter()
    for i in range(frames):
        f(blobs[i % n])
    return (time.perf_counter() - t0) * 1000.0 / frames

for name, what, f in [
    ("py_seed", "python seed: open -> JPEG q80 -> base64 (no downscale)", seed),
    ("py_seed_loaded", "python seed with an explicit load() before save (reference)", seed_loaded),
    ("py_768", "python + downscale: open -> 768 px (Hamming) -> JPEG q80 -> base64", downscaled),
]:
    ms = ms_per_frame(f)
    print(f"{what:<70} {ms:8.3f} ms/frame")
    print(f"RESULT {name} {ms:.4f}")
PY

}

for set in frames frames422; do
    echo "== $set: ours (Rust, release profile)"
    cargo bench -q --bench prep_cli -- time "$WORK/$set" "$FRAMES" | tee "$WORK/ours-$set.txt" | grep -v '^RESULT'
    echo "== $set: seed (Python $("$VENV/bin/python" -c 'import sys; print(sys.version.split()[0])'), Pillow $("$VENV/bin/python" -c 'import PIL; print(PIL.__version__)'))"
    py_time "$WORK/$set" "$WORK/py-$set.txt"
done

get() { awk -v k="$2" '$1 == "RESULT" && $2 == k { print $3 }' "$1"; }
table() { # table SET LABEL
    local ours ours_nd py py768
    ours=$(get "$WORK/ours-$1.txt" ours_full_prep_768)
    ours_nd=$(get "$WORK/ours-$1.txt" ours_no_downscale)
    py=$(get "$WORK/py-$1.txt" py_seed)
    py768=$(get "$WORK/py-$1.txt" py_768)
    echo "== per frame, 1280x720 JPEG in: $2"
    awk -v o="$ours" -v ond="$ours_nd" -v p="$py" -v p7="$py768" 'BEGIN {
        printf "ours (768 px)            %7.2f ms   python seed (1280x720, no downscale) %7.2f ms   ratio %.2fx\n", o, p, p / o
        printf "ours without downscale   %7.2f ms   python seed (same work)              %7.2f ms   ratio %.2fx\n", ond, p, p / ond
        printf "ours (768 px)            %7.2f ms   python with the same downscale       %7.2f ms   ratio %.2fx\n", o, p7, p7 / o
        printf "target: ours >= 5x faster than the seed per frame: %s (%.2fx)\n", (p / o >= 5 ? "met" : "NOT met"), p / o
    }'
}
table frames "q90 4:4:4 (the benchmark set)"
table frames422 "q90 4:2:2 (as a UVC webcam sends MJPEG)"
