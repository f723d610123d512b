"""Build hook: ship datasets/bccd and configs/ inside the wheel (as yolo_gd/_shipped/bccd and yolo_gd/_configs).

They are stored once in the repository, outside the package. Only standard (wheel) builds copy them: an editable
install must not, because a `yolo_gd/` folder of data in site-packages would shadow the checkout's package as a
namespace package; a checkout reads the folders in place instead (yolo_gd/shipped.py finds either).
"""

import os

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

SHIPPED = {"datasets/bccd": "yolo_gd/_shipped/bccd", "configs": "yolo_gd/_configs"}


class ShippedFilesHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version, build_data):
        if version == "editable":
            return
        for source, target in SHIPPED.items():
            build_data["force_include"][os.path.join(self.root, source)] = target
