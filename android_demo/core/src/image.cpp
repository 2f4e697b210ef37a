#include "edgepose/image.h"

#include <cmath>
#include <string>

#include "mat.h"  // ncnn: warpaffine_bilinear_c3

namespace edgepose {

Status check_image(const ImageView& img) {
    if (img.data == nullptr) return Status::Error(ERR_BAD_IMAGE, "image has no pixels (null data)");
    if (img.width <= 0 || img.height <= 0)
        return Status::Error(ERR_BAD_IMAGE, "image is empty (" + std::to_string(img.width) + "x" +
                                                std::to_string(img.height) + ")");
    if (img.width > 16384 || img.height > 16384)
        return Status::Error(ERR_BAD_IMAGE, "image too large (" + std::to_string(img.width) + "x" +
                                                std::to_string(img.height) + ", at most 16384 per side)");
    if (img.stride < img.width * 3)
        return Status::Error(ERR_BAD_IMAGE, "row stride " + std::to_string(img.stride) + " is shorter than width*3 = " +
                                                std::to_string(img.width * 3));
    return Status::Ok();
}

// One axis of OpenCV's INTER_LINEAR resize tables (resize.cpp, 8U path).
static void resize_table(int out_len, int in_len, std::vector<int>& i0, std::vector<int>& i1,
                         std::vector<int>& w0, std::vector<int>& w1) {
    const double scale = 1.0 / (static_cast<double>(out_len) / in_len);
    i0.resize(out_len); i1.resize(out_len); w0.resize(out_len); w1.resize(out_len);
    for (int d = 0; d < out_len; d++) {
        float f = static_cast<float>((d + 0.5) * scale - 0.5);
        int s = static_cast<int>(std::floor(f));
        f -= s;
        if (s < 0) { f = 0.f; s = 0; }
        if (s >= in_len - 1) { f = 0.f; s = in_len - 1; }
        i0[d] = s;
        i1[d] = std::min(s + 1, in_len - 1);
        int a = static_cast<int>(std::lrint((1.f - f) * 2048.f));
        w0[d] = a;
        w1[d] = 2048 - a;
    }
}

void resize_bilinear_exact(const ImageView& src, Image& dst, int width, int height) {
    dst.width = width;
    dst.height = height;
    dst.pixels.assign(static_cast<size_t>(width) * height * 3, 0);
    std::vector<int> x0, x1, wx0, wx1, y0, y1, wy0, wy1;
    resize_table(width, src.width, x0, x1, wx0, wx1);
    resize_table(height, src.height, y0, y1, wy0, wy1);
    std::vector<int> row0(width * 3), row1(width * 3);
    auto horizontal = [&](int sy, std::vector<int>& row) {
        const uint8_t* s = src.data + static_cast<size_t>(sy) * src.stride;
        for (int x = 0; x < width; x++)
            for (int c = 0; c < 3; c++)
                row[x * 3 + c] = s[x0[x] * 3 + c] * wx0[x] + s[x1[x] * 3 + c] * wx1[x];
    };
    for (int y = 0; y < height; y++) {
        horizontal(y0[y], row0);
        horizontal(y1[y], row1);
        uint8_t* d = dst.pixels.data() + static_cast<size_t>(y) * width * 3;
        const int64_t b0 = wy0[y], b1 = wy1[y];
        for (int i = 0; i < width * 3; i++) {
            int64_t v = (((b0 * row0[i]) >> 4) + ((b1 * row1[i]) >> 4) + (1 << 17)) >> 18;
            d[i] = static_cast<uint8_t>(v < 0 ? 0 : v > 255 ? 255 : v);
        }
    }
}

void warp_affine_exact(const ImageView& src, Image& dst, int width, int height, const double inv[6],
                       uint8_t border) {
    dst.width = width;
    dst.height = height;
    dst.pixels.assign(static_cast<size_t>(width) * height * 3, 0);
    const float m[6] = {static_cast<float>(inv[0]), static_cast<float>(inv[1]), static_cast<float>(inv[2]),
                        static_cast<float>(inv[3]), static_cast<float>(inv[4]), static_cast<float>(inv[5])};
    const float bv = border;
    for (int y = 0; y < height; y++) {
        uint8_t* d = dst.pixels.data() + static_cast<size_t>(y) * width * 3;
        const float fy = static_cast<float>(y);
        for (int x = 0; x < width; x++) {
            const float fx = static_cast<float>(x);
            const float sx = m[0] * fx + m[1] * fy + m[2];
            const float sy = m[3] * fx + m[4] * fy + m[5];
            if (!(std::fabs(sx) < 1e7f && std::fabs(sy) < 1e7f)) {  // also catches NaN
                d[x * 3] = d[x * 3 + 1] = d[x * 3 + 2] = border;
                continue;
            }
            const int ix = static_cast<int>(std::floor(sx));
            const int iy = static_cast<int>(std::floor(sy));
            const float a = sx - static_cast<float>(ix);
            const float b = sy - static_cast<float>(iy);
            const float w00 = (1.f - a) * (1.f - b), w01 = a * (1.f - b), w10 = (1.f - a) * b, w11 = a * b;
            const bool in_x0 = ix >= 0 && ix < src.width, in_x1 = ix + 1 >= 0 && ix + 1 < src.width;
            const bool in_y0 = iy >= 0 && iy < src.height, in_y1 = iy + 1 >= 0 && iy + 1 < src.height;
            const uint8_t* r0 = in_y0 ? src.data + static_cast<size_t>(iy) * src.stride : nullptr;
            const uint8_t* r1 = in_y1 ? src.data + static_cast<size_t>(iy + 1) * src.stride : nullptr;
            for (int c = 0; c < 3; c++) {
                const float p00 = (in_y0 && in_x0) ? r0[ix * 3 + c] : bv;
                const float p01 = (in_y0 && in_x1) ? r0[(ix + 1) * 3 + c] : bv;
                const float p10 = (in_y1 && in_x0) ? r1[ix * 3 + c] : bv;
                const float p11 = (in_y1 && in_x1) ? r1[(ix + 1) * 3 + c] : bv;
                const float v = p00 * w00 + p01 * w01 + p10 * w10 + p11 * w11;
                const long r = std::lrint(v);
                d[x * 3 + c] = static_cast<uint8_t>(r < 0 ? 0 : r > 255 ? 255 : r);
            }
        }
    }
}

void warp_affine_ncnn(const ImageView& src, Image& dst, int width, int height, const double inv[6],
                      uint8_t border) {
    dst.width = width;
    dst.height = height;
    dst.pixels.assign(static_cast<size_t>(width) * height * 3, 0);
    const float tm[6] = {static_cast<float>(inv[0]), static_cast<float>(inv[1]), static_cast<float>(inv[2]),
                         static_cast<float>(inv[3]), static_cast<float>(inv[4]), static_cast<float>(inv[5])};
    const unsigned int v = border | (border << 8) | (border << 16) | (0xFFu << 24);
    ncnn::warpaffine_bilinear_c3(src.data, src.width, src.height, src.stride, dst.pixels.data(), width, height,
                                 width * 3, tm, 0, v);
}

void rgba_to_bgr(const uint8_t* rgba, int width, int height, int stride, Image& dst) {
    dst.width = width;
    dst.height = height;
    dst.pixels.resize(static_cast<size_t>(width) * height * 3);
    for (int y = 0; y < height; y++) {
        const uint8_t* s = rgba + static_cast<size_t>(y) * stride;
        uint8_t* d = dst.pixels.data() + static_cast<size_t>(y) * width * 3;
        for (int x = 0; x < width; x++) {
            d[x * 3] = s[x * 4 + 2];
            d[x * 3 + 1] = s[x * 4 + 1];
            d[x * 3 + 2] = s[x * 4];
        }
    }
}

void rgb_to_bgr(const uint8_t* rgb, int width, int height, int stride, Image& dst) {
    dst.width = width;
    dst.height = height;
    dst.pixels.resize(static_cast<size_t>(width) * height * 3);
    for (int y = 0; y < height; y++) {
        const uint8_t* s = rgb + static_cast<size_t>(y) * stride;
        uint8_t* d = dst.pixels.data() + static_cast<size_t>(y) * width * 3;
        for (int x = 0; x < width; x++) {
            d[x * 3] = s[x * 3 + 2];
            d[x * 3 + 1] = s[x * 3 + 1];
            d[x * 3 + 2] = s[x * 3];
        }
    }
}

}  // namespace edgepose
