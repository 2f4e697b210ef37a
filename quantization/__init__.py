"""INT8 for ncnn in our own code (calibration, mixed precision) and accuracy comparisons."""
