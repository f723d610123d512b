"""``python -m yolo_gd`` is the ``yolo-gd`` command."""

import subprocess
import sys


def test_python_dash_m_runs_the_cli():
    done = subprocess.run([sys.executable, "-m", "yolo_gd", "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.startswith("yolo-gd ")
    done = subprocess.run([sys.executable, "-m", "yolo_gd", "trian"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "Did you mean 'train'" in done.stderr
