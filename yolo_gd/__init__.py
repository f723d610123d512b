"""yolo_gd: inject any optimizer and LR schedule into Ultralytics YOLO training, and watch every step."""

from yolo_gd.errors import UserError

__version__ = "0.1.0"

__all__ = ["UserError", "__version__", "attach", "doctor", "lr_find", "train"]


def __getattr__(name):
    # Lazy: `import yolo_gd` stays cheap and Ultralytics-free until the trainer-facing API is used.
    if name == "attach":
        from yolo_gd.inject.attach import attach

        return attach
    if name == "train":
        from yolo_gd.training import train

        return train
    if name == "doctor":
        from yolo_gd.health.doctor import doctor

        return doctor
    if name == "lr_find":
        from yolo_gd.lrfind.run import lr_find

        return lr_find
    raise AttributeError(f"module 'yolo_gd' has no attribute '{name}'")
