#include "edgepose/image_io.h"

#include <cstdio>
#include <fstream>
#include <sstream>

#if defined(EDGEPOSE_WITH_STB)
#define STB_IMAGE_IMPLEMENTATION
#define STBI_NO_HDR
#include <stb/stb_image.h>
#endif

namespace edgepose {

static bool read_token(std::istream& f, std::string& tok) {
    tok.clear();
    int c;
    while ((c = f.get()) != EOF) {
        if (c == '#') { while ((c = f.get()) != EOF && c != '\n') {} continue; }
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') { if (!tok.empty()) return true; continue; }
        tok += static_cast<char>(c);
    }
    return !tok.empty();
}

static Status read_ppm(const std::string& path, std::ifstream& f, Image& img) {
    std::string magic, ws, hs, ms;
    if (!read_token(f, magic) || magic != "P6" || !read_token(f, ws) || !read_token(f, hs) || !read_token(f, ms))
        return Status::Error(ERR_BAD_IMAGE, path + ": not a binary PPM (P6) image");
    long w = std::strtol(ws.c_str(), nullptr, 10), h = std::strtol(hs.c_str(), nullptr, 10);
    long maxval = std::strtol(ms.c_str(), nullptr, 10);
    if (w <= 0 || h <= 0 || w > 16384 || h > 16384)
        return Status::Error(ERR_BAD_IMAGE, path + ": image size " + ws + "x" + hs + " is empty or too large");
    if (maxval != 255) return Status::Error(ERR_BAD_IMAGE, path + ": only 8-bit PPM (maxval 255) is supported");
    img.width = static_cast<int>(w);
    img.height = static_cast<int>(h);
    std::vector<uint8_t> rgb(static_cast<size_t>(w) * h * 3);
    f.read(reinterpret_cast<char*>(rgb.data()), static_cast<std::streamsize>(rgb.size()));
    if (static_cast<size_t>(f.gcount()) != rgb.size())
        return Status::Error(ERR_BAD_IMAGE, path + ": truncated PPM (" + std::to_string(f.gcount()) + " of " +
                                                std::to_string(rgb.size()) + " pixel bytes)");
    rgb_to_bgr(rgb.data(), img.width, img.height, img.width * 3, img);
    return Status::Ok();
}

Status read_image(const std::string& path, Image& img) {
    std::ifstream f(path, std::ios::binary);
    if (!f) return Status::Error(ERR_NOT_FOUND, path + ": image file not found");
    char head[2] = {0, 0};
    f.read(head, 2);
    if (f.gcount() == 0) return Status::Error(ERR_BAD_IMAGE, path + ": empty file");
    if (head[0] == 'P' && head[1] == '6') {
        f.seekg(0);
        return read_ppm(path, f, img);
    }
#if defined(EDGEPOSE_WITH_STB)
    int w = 0, h = 0, n = 0;
    unsigned char* data = stbi_load(path.c_str(), &w, &h, &n, 3);
    if (!data) return Status::Error(ERR_BAD_IMAGE, path + ": cannot decode image (" + stbi_failure_reason() + ")");
    rgb_to_bgr(data, w, h, w * 3, img);
    stbi_image_free(data);
    return Status::Ok();
#else
    return Status::Error(ERR_BAD_IMAGE, path + ": not a binary PPM (P6) image (this build reads PPM only)");
#endif
}

Status write_ppm(const std::string& path, const Image& img) {
    const std::string tmp = path + ".tmp";
    {
        std::ofstream f(tmp, std::ios::binary);
        if (!f) return Status::Error(ERR_BAD_ARGUMENT, path + ": cannot write");
        f << "P6\n" << img.width << " " << img.height << "\n255\n";
        std::vector<uint8_t> rgb(img.pixels.size());
        for (size_t i = 0; i + 2 < img.pixels.size(); i += 3) {
            rgb[i] = img.pixels[i + 2];
            rgb[i + 1] = img.pixels[i + 1];
            rgb[i + 2] = img.pixels[i];
        }
        f.write(reinterpret_cast<const char*>(rgb.data()), static_cast<std::streamsize>(rgb.size()));
        if (!f) return Status::Error(ERR_BAD_ARGUMENT, path + ": write failed");
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) return Status::Error(ERR_BAD_ARGUMENT, path + ": cannot rename");
    return Status::Ok();
}

}  // namespace edgepose
