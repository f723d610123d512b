"""``python -m yolo_gd ...`` is ``yolo-gd ...``."""

import sys

from yolo_gd.cli import main

sys.exit(main())
