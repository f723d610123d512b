#!/usr/bin/env bash
# Run inside the installed (non-editable) venv, in the folder where the Quick start just ran: check what it wrote,
# then every command's help and one tiny run of each command from the wheel. Usage: installed_smoke.sh WHEEL INSTALL
set -euo pipefail
wheel=$1
install=$2
fail() { echo "ci: $*" >&2; exit 1; }

python -c "import yolo_gd, sys; sys.exit('editable or checkout import: ' + yolo_gd.__file__
           if 'site-packages' not in yolo_gd.__file__ else 0)"
report=$(find runs/ablate -path '*/report/report.html' | head -1)
[ -n "$report" ] || fail "the quick start wrote no report/report.html under runs/ablate/"
[ -f "${report%.html}.md" ] || fail "the quick start wrote no report.md beside $report"
grep -q "p vs base" quickstart.log || fail "the quick start printed no summary table"
grep -Eq "^(Not r|R)esolved at this budget" quickstart.log || fail "the quick start printed no resolved-or-not verdict"
sweep=$(dirname "$(dirname "$report")")

for c in train data ablate compare report qat doctor lrfind plot; do
  yolo-gd "$c" help >/dev/null || fail "yolo-gd $c help exited non-zero"
done
yolo-gd --version
python -m yolo_gd --version

# One tiny run of each command (8 generated images at 32 px; seconds each).
yolo-gd data shapes out=tiny n_train=8 n_val=4 imgsz=32 seed=0
yolo-gd data check tiny
yolo-gd data check bccd                      # the shipped dataset, from the wheel
yolo-gd train model=yolo11n.yaml data=tiny/data.yaml optimizer=adamw epochs=1 imgsz=32 batch=4 workers=0 \
  project="$PWD/runs/smoke" name=train
yolo-gd plot runs/smoke/train
yolo-gd doctor runs/smoke/train
yolo-gd lrfind model=yolo11n.yaml data=tiny/data.yaml optimizer=sgd imgsz=32 batch=4 nbs=4 steps=8 out=runs/smoke/lrfind
[ -f runs/smoke/lrfind/suggestion.json ] || fail "lrfind wrote no suggestion.json"
yolo-gd report "$sweep"
# QAT needs the qat extra: install it into the same venv from the same wheel, then fine-tune the Quick start's
# trained AdamW model (a float model trained well enough for a finite quantized fine-tune).
eval "${install% *} \"$wheel[qat]\"" >qat_install.log 2>&1 || { tail -50 qat_install.log; exit 1; }
best=$(find "$sweep" -path '*adamw*/weights/best.pt' | head -1)
[ -n "$best" ] || fail "no AdamW best.pt in $sweep"
yolo-gd qat model="$best" data=tiny/data.yaml optimizer=adamw lr=1e-5 epochs=1 imgsz=32 batch=4 workers=0 \
  project="$PWD/runs/smoke" name=qat
echo "ci: installed commands passed"
