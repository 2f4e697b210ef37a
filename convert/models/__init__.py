"""PyTorch definitions of the official OpenMMLab real-time pose and detection models.

Written from the published architecture descriptions; module and parameter names
follow the official code so that official checkpoints load with strict=True.
"""
