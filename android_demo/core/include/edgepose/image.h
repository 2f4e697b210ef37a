// 8-bit BGR images and the exact resampling rules of the Python runtime (OpenCV 5).
#pragma once

#include <cstdint>
#include <vector>

#include "edgepose/status.h"

namespace edgepose {

// Packed 8-bit BGR, rows of `stride` bytes. Views do not own their pixels.
struct ImageView {
    const uint8_t* data = nullptr;
    int width = 0, height = 0, stride = 0;
};

struct Image {
    std::vector<uint8_t> pixels;
    int width = 0, height = 0;
    ImageView view() const { return ImageView{pixels.data(), width, height, width * 3}; }
};

Status check_image(const ImageView& img);

// cv2.resize(INTER_LINEAR) on uint8, bit for bit: OpenCV's fixed-point bilinear
// (11-bit weights, half-pixel centres, edge clamp).
void resize_bilinear_exact(const ImageView& src, Image& dst, int width, int height);

// cv2.warpAffine(INTER_LINEAR, BORDER_CONSTANT) on uint8 as OpenCV 5 does it: float32
// source coordinates and float32 bilinear weights, rounded; `inv` maps output pixels to
// source pixels (the inverse of the forward matrix, 2x3 row-major).
void warp_affine_exact(const ImageView& src, Image& dst, int width, int height, const double inv[6],
                       uint8_t border);

// The same crop with ncnn::warpaffine_bilinear_c3 (10-bit fixed-point coordinates, truncating
// rounding). Kept for measuring the difference (see README); the pipeline uses the exact one.
void warp_affine_ncnn(const ImageView& src, Image& dst, int width, int height, const double inv[6],
                      uint8_t border);

// Convert RGBA (Android Bitmap / camera) or RGB to packed BGR.
void rgba_to_bgr(const uint8_t* rgba, int width, int height, int stride, Image& dst);
void rgb_to_bgr(const uint8_t* rgb, int width, int height, int stride, Image& dst);

}  // namespace edgepose
