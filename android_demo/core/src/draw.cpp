#include "edgepose/draw.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "mat.h"

namespace edgepose {

static unsigned int pack(const std::vector<int>& rgb, int channels) {
    unsigned r = rgb[0] & 255, g = rgb[1] & 255, b = rgb[2] & 255;
    // ncnn reads the colour bytes in buffer order.
    return channels == 3 ? (b | (g << 8) | (r << 16)) : (r | (g << 8) | (b << 16) | (255u << 24));
}

void draw_poses(uint8_t* px, int w, int h, int stride, int channels, const std::vector<Pose>& poses,
                const ModelMeta& meta, float threshold, bool draw_boxes) {
    if (!px || w <= 0 || h <= 0 || (channels != 3 && channels != 4)) return;
    const int thick = std::max(1, std::min(w, h) / 300);
    auto line = [&](int x0, int y0, int x1, int y1, unsigned color, int t) {
        if (channels == 3) ncnn::draw_line_c3(px, w, h, stride, x0, y0, x1, y1, color, t);
        else ncnn::draw_line_c4(px, w, h, stride, x0, y0, x1, y1, color, t);
    };
    auto circle = [&](int cx, int cy, int r, unsigned color) {
        if (channels == 3) ncnn::draw_circle_c3(px, w, h, stride, cx, cy, r, color, -1);
        else ncnn::draw_circle_c4(px, w, h, stride, cx, cy, r, color, -1);
    };
    const std::vector<int> white = {255, 255, 255}, green = {0, 255, 0};
    for (const Pose& p : poses) {
        if (draw_boxes) {
            unsigned c = pack(green, channels);
            int x1 = static_cast<int>(p.box.x1), y1 = static_cast<int>(p.box.y1);
            int x2 = static_cast<int>(p.box.x2), y2 = static_cast<int>(p.box.y2);
            line(x1, y1, x2, y1, c, thick);
            line(x2, y1, x2, y2, c, thick);
            line(x2, y2, x1, y2, c, thick);
            line(x1, y2, x1, y1, c, thick);
            if (p.track_id >= 0) {
                std::string id = std::to_string(p.track_id);
                if (channels == 3) ncnn::draw_text_c3(px, w, h, stride, id.c_str(), x1 + 2, y1 + 2, 16 * thick, c);
                else ncnn::draw_text_c4(px, w, h, stride, id.c_str(), x1 + 2, y1 + 2, 16 * thick, c);
            }
        }
        const auto& k = p.keypoints;
        for (size_t e = 0; e < meta.skeleton.size(); e++) {
            int a = meta.skeleton[e].first, b = meta.skeleton[e].second;
            if (a < 0 || b < 0 || a >= static_cast<int>(k.size()) || b >= static_cast<int>(k.size())) continue;
            if (k[a].score < threshold || k[b].score < threshold) continue;
            const auto& col = e < meta.skeleton_colors.size() ? meta.skeleton_colors[e] : white;
            line(static_cast<int>(std::lround(k[a].x)), static_cast<int>(std::lround(k[a].y)),
                 static_cast<int>(std::lround(k[b].x)), static_cast<int>(std::lround(k[b].y)), pack(col, channels), thick);
        }
        for (size_t j = 0; j < k.size(); j++) {
            if (k[j].score < threshold || !std::isfinite(k[j].x) || !std::isfinite(k[j].y)) continue;
            const auto& col = j < meta.keypoint_colors.size() ? meta.keypoint_colors[j] : white;
            circle(static_cast<int>(std::lround(k[j].x)), static_cast<int>(std::lround(k[j].y)), thick + 1, pack(col, channels));
        }
    }
}

}  // namespace edgepose
