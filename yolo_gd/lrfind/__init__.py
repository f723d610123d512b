"""The LR range test (Smith 2017; fastai's / Lightning's LR finder) on the detection loss.

- :mod:`~yolo_gd.lrfind.rangetest`: the pure math: the exponential ramp (a schedule), the smoothed loss, the stop
  rule, the suggestion rules and the confidence rule (a suggestion, or "no reliable suggestion" and why); no
  torch, no trainer;
- :mod:`~yolo_gd.lrfind.output`: the CSV, the plot and the verdict of a finished test;
- :mod:`~yolo_gd.lrfind.run`: :func:`lr_find`, which trains a copy of the model with the ramp as its schedule under
  the trials' conditions, reading the loss of a fixed probe set (:mod:`yolo_gd.inject.probe`).
"""
