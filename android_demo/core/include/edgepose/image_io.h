// Reading/writing images for the command-line program and tests (not used by the app).
#pragma once

#include <string>

#include "edgepose/image.h"

namespace edgepose {

// Binary PPM (P6, 8-bit) always; JPEG/PNG/BMP too when built with Debian's libstb-dev
// (EDGEPOSE_WITH_STB). PPM is what the parity tests use: decoded once by OpenCV in Python, so
// both sides see the same pixels.
Status read_image(const std::string& path, Image& img);
Status write_ppm(const std::string& path, const Image& img);

}  // namespace edgepose
