#!/usr/bin/env bash
# CI: (1) a fresh virtual environment, then exactly the README's test command (marked <!-- test-command --> there);
# (2) what a user installs and runs: the wheel built from this checkout, installed non-editable in a second fresh
# venv, the README's Quick start run verbatim (marked <!-- quickstart-command -->) from a folder outside the
# checkout, then every command's help and one tiny run of each (.ci/installed_smoke.sh). The README can never drift
# from what CI proves. Any failure, including pytest's exit 5 (no tests), is fatal.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
ci_start=$(date +%s)

readme_command() {  # the first line starting with $2 in the fenced block under the marker $1
  grep -A3 "<!-- $1 -->" README.md | grep -m1 "^$2"
}


# --- the user's install -------------------------------------------------------------------------------------------
source /work/venv/bin/activate
user=$(mktemp -d /tmp/yolo_gd_user.XXXXXX)
start=$(date +%s)
python -m build --outdir "$user/dist" . >/dev/null   # sdist, then the wheel from it, in an isolated build env
wheel=$(ls "$user"/dist/*.whl)
deactivate
python3 -m venv "$user/venv"
# shellcheck disable=SC1091
source "$user/venv/bin/activate"
python -m pip install --upgrade pip >/dev/null
# The Quick start installs the checkout ('pip install ... .'): here the same install of the built wheel, non-editable.
install=$(readme_command quickstart-install 'pip install')
install="${install% .} $wheel"
echo "ci: $install"
eval "$install" >/dev/null
echo "ci: wheel built and installed in $(( $(date +%s) - start )) s"

cd "$user" && mkdir work && cd work   # outside the checkout: nothing of it on sys.path or under the cwd
quick=$(cd "$repo" && readme_command quickstart-command 'yolo-gd')
echo "ci: $quick (in $PWD)"
start=$(date +%s)
eval "$quick" | tee quickstart.log
echo "ci: quick start passed in $(( $(date +%s) - start )) s"
bash "$repo/.ci/installed_smoke.sh" "$wheel" "$install"
echo "ci: all passed in $(( $(date +%s) - ci_start )) s"
