#!/usr/bin/env bash
# The knowledge base across workspaces: two workspaces on one tracking server (a SQLite file), the
# breast-cancer table, then the wine table, whose first search starts from what the first one found.
#     benchmarks/knowledge_two_workspaces.sh [folder, default /tmp/dlautoml-knowledge]
set -euo pipefail
PROJECT=$(cd "$(dirname "$0")/.." && pwd)
BASE=${1:-/tmp/dlautoml-knowledge}; mkdir -p $BASE; rm -rf $BASE/a $BASE/b $BASE/mlflow.db $BASE/artifacts
export DLAUTOML_TRACKING_URI=sqlite:///$BASE/mlflow.db PATH=$PROJECT/.venv/bin:$PATH
for pair in "a breast_cancer" "b wine"; do
  set -- $pair
  ws=$BASE/$1; mkdir -p $ws/data
  (cd $PROJECT && cp -r components tasks flows dvc.yaml params.yaml .dvcignore $ws/)
  python - "$ws" "$2" <<'PY'
import sys, yaml
from pathlib import Path
from sklearn import datasets
ws, name = Path(sys.argv[1]), sys.argv[2]
frame = getattr(datasets, f"load_{name}")(as_frame=True).frame.rename(columns={"target": "label"})
frame.to_csv(ws / "data" / f"{name}.csv", index=False)
params = yaml.safe_load((ws / "params.yaml").read_text())
params["task_formulation"].update(data_path=f"data/{name}.csv", target="label")
params["training"].update(max_minutes=1.5, max_trials=6)
(ws / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
PY
  (cd $ws && git init -q && dvc init -q && dlautoml run > run.log 2>&1)
  grep -E "meta-model|warm start|meta-features|test accuracy" $ws/run.log | sed 's/^.*\] //'
done
cd $BASE/b && dlautoml knowledge show
