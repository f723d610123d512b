"""yolo_gd: inject any optimizer and LR schedule into Ultralytics YOLO training, and watch every step."""

from yolo_gd.errors import UserError

__version__ = "0.1.0"

__all__ = ["UserError", "__version__", "attach", "train"]


def __getattr__(name):
    # Lazy: `import yolo_gd` stays cheap and Ultralytics-free until the trainer-facing API is used.
    if name == "attach":
        from yolo_gd.inject.attach import attach

        return attach
    if name == "train":
        from yolo_gd.training import train

        return train
    raise AttributeError(f"module 'yolo_gd' has no attribute '{name}'")
