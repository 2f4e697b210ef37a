"""Host toolchain: official RTMPose / DWPose / RTMW / RTMDet architectures in PyTorch,
checkpoint loading, and export to ncnn through pnnx."""
