#!/usr/bin/env bash
# Screenshot MLflow's UI showing yolo_gd's per-step series (docs/mlflow_grad_norm.png): a tiny injected training
# with Ultralytics' MLflow integration on (its default when mlflow is installed), a local MLflow server on the
# run's sqlite store, and the metric page of yolo_gd/grad_norm and yolo_gd/lr/weight in headless Chromium.
#
#   bench/render_mlflow.sh [OUT_PNG]        (needs: pip install 'yolo_gd[mlflow]'; apt-get install -y chromium)
set -euo pipefail
out=$(realpath -m "${1:-docs/mlflow_grad_norm.png}")
work=$(mktemp -d)
cd "$work"
export YOLO_CONFIG_DIR=$work/cfg YOLO_OFFLINE=1
yolo-gd train model=yolo11n.yaml data=shapes optimizer=adamw epochs=3 imgsz=64 batch=16 nbs=16 workers=0 \
    plots=false project="$work/runs" name=adamw >/dev/null
mlflow server --backend-store-uri "sqlite:///$work/mlflow.db" --host 127.0.0.1 --port 5055 >server.log 2>&1 &
server=$!
trap 'kill $server; rm -rf "$work"' EXIT
sleep 20
read -r exp run < <(python -c "
from mlflow.tracking import MlflowClient
c = MlflowClient('sqlite:///$work/mlflow.db'); e = c.get_experiment_by_name('$work/runs')
print(e.experiment_id, c.search_runs([e.experiment_id])[0].info.run_id)")
q='%22'
url="http://127.0.0.1:5055/#/metric?runs=%5B$q$run$q%5D&metric=${q}yolo_gd%2Fgrad_norm$q&experiments=%5B$q$exp$q%5D"
url+="&plot_metric_keys=%5B${q}yolo_gd%2Fgrad_norm$q%2C${q}yolo_gd%2Flr%2Fweight$q%5D&plot_layout=%7B%7D&x_axis=step"
url+="&y_axis_scale=log&line_smoothness=1&show_point=true&deselected_curves=%5B%5D&last_linear_y_axis_range=%5B%5D"
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
    --disable-component-update --disable-sync --hide-scrollbars --user-data-dir="$work/profile" \
    --virtual-time-budget=20000 --window-size=2000,820 --screenshot="$out" "$url" 2>/dev/null
echo "$out"
