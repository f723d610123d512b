"""The LR range test (Smith 2017; fastai's / Lightning's LR finder) on the detection loss.

- :mod:`~yolo_gd.lrfind.rangetest`: the pure math: the exponential ramp (a schedule), the smoothed loss, the stop
  rule and the suggestion rules; no torch, no trainer;
- :mod:`~yolo_gd.lrfind.output`: the CSV and the plot of a finished test;
- :mod:`~yolo_gd.lrfind.run`: :func:`lr_find`, which trains a copy of the model with the ramp as its schedule.
"""
