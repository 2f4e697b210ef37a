#include "edgepose/detector.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace edgepose {

void letterbox_size(int width, int height, int in_w, int in_h, const std::string& rule, int& new_w, int& new_h) {
    if (rule == "mmdet") {
        double f = std::min(static_cast<double>(std::max(in_w, in_h)) / std::max(width, height),
                            static_cast<double>(std::min(in_w, in_h)) / std::min(width, height));
        new_w = static_cast<int>(width * f + 0.5);
        new_h = static_cast<int>(height * f + 0.5);
    } else {
        double r = std::min(static_cast<double>(in_h) / height, static_cast<double>(in_w) / width);
        new_w = static_cast<int>(width * r);
        new_h = static_cast<int>(height * r);
    }
    new_w = std::min(std::max(new_w, 1), in_w);
    new_h = std::min(std::max(new_h, 1), in_h);
}

std::vector<int> nms(const std::vector<Box>& boxes, float iou_threshold, int max_keep) {
    std::vector<int> order(boxes.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return boxes[a].score > boxes[b].score; });
    std::vector<float> areas(boxes.size());
    for (size_t i = 0; i < boxes.size(); i++) areas[i] = (boxes[i].x2 - boxes[i].x1) * (boxes[i].y2 - boxes[i].y1);
    std::vector<int> keep;
    std::vector<char> removed(boxes.size(), 0);
    for (size_t oi = 0; oi < order.size(); oi++) {
        int i = order[oi];
        if (removed[i]) continue;
        keep.push_back(i);
        if (max_keep > 0 && static_cast<int>(keep.size()) >= max_keep) break;
        for (size_t oj = oi + 1; oj < order.size(); oj++) {
            int j = order[oj];
            if (removed[j]) continue;
            float w = std::max(0.f, std::min(boxes[i].x2, boxes[j].x2) - std::max(boxes[i].x1, boxes[j].x1));
            float h = std::max(0.f, std::min(boxes[i].y2, boxes[j].y2) - std::max(boxes[i].y1, boxes[j].y1));
            float inter = w * h;
            float uni = areas[i] + areas[j] - inter;
            float iou = uni > 0 ? inter / std::max(uni, 1e-12f) : 0.f;
            if (iou > iou_threshold) removed[j] = 1;
        }
    }
    return keep;
}

Status Detector::load(const std::string& model_path, const RunOptions& options, float score_threshold, float nms_iou) {
    Status st = model_.load(model_path, "detect", options);
    if (!st.ok()) return st;
    const ModelMeta& m = model_.meta();
    family_ = m.detector.family;
    if (family_.empty()) family_ = m.output_blobs.count("cls_8") ? "rtmdet" : m.output_blobs.count("output") ? "yolox" : "";
    if (family_ != "rtmdet" && family_ != "yolox")
        return Status::Error(ERR_BAD_MODEL, m.json_path + ": unknown detector family '" + family_ + "' (supported: rtmdet, yolox)");
    strides_ = m.detector.strides.empty() ? std::vector<int>{8, 16, 32} : m.detector.strides;
    roles_.clear();
    if (family_ == "rtmdet") {
        for (int s : strides_) roles_.push_back("cls_" + std::to_string(s));
        for (int s : strides_) roles_.push_back("box_" + std::to_string(s));
    } else {
        roles_.push_back("output");
    }
    std::string missing;
    for (const auto& r : roles_)
        if (!m.output_blobs.count(r)) missing += (missing.empty() ? "" : ", ") + r;
    if (!missing.empty())
        return Status::Error(ERR_BAD_MODEL, m.json_path + ": output_blobs lacks " + missing + " for a " + family_ + " detector");
    person_class_ = m.detector.person_class;
    // Family defaults mirrored from edge_runtime/constants.py DETECTOR_DEFAULTS.
    const float family_iou = family_ == "yolox" ? 0.45f : 0.6f;
    const bool has_meta = !m.detector.family.empty();
    score_threshold_ = score_threshold >= 0 ? score_threshold : 0.3f;
    nms_iou_ = nms_iou >= 0 ? nms_iou : has_meta ? m.detector.nms_iou : family_iou;
    pad_value_ = has_meta ? m.detector.pad_value : kLetterboxPadValue;
    max_detections_ = has_meta ? m.detector.max_per_img : kMaxDetections;
    nms_pre_ = has_meta ? m.detector.nms_pre : kNmsPre;
    return Status::Ok();
}

static inline float sigmoid(float x) { return 1.f / (1.f + std::exp(-x)); }

Status Detector::decode_rtmdet(const std::map<std::string, ncnn::Mat>& out, int valid_w, int valid_h,
                               std::vector<Box>& cand) const {
    for (int s : strides_) {
        const ncnn::Mat& cls = out.at("cls_" + std::to_string(s));
        const ncnn::Mat& reg = out.at("box_" + std::to_string(s));
        int cls_c = cls.dims == 2 ? 1 : cls.c;
        int cls_h = cls.dims == 2 ? cls.h : cls.h, cls_w = cls.w;
        if (reg.dims != 3 || reg.c != 4 || cls_h != reg.h || cls_w != reg.w)
            return Status::Error(ERR_INFERENCE, "RTMDet outputs at stride " + std::to_string(s) +
                                                    " have unexpected shapes; expected [C, H, W] and [4, H, W]");
        const int channel = cls_c > 1 ? person_class_ : 0;
        const float* logits = cls.dims == 2 ? static_cast<const float*>(cls.data) : cls.channel(channel);
        const int n = reg.h * reg.w;
        std::vector<std::pair<float, int>> idx;
        for (int i = 0; i < n; i++) {
            float sc = sigmoid(logits[i]);
            if (sc > score_threshold_) idx.emplace_back(sc, i);
        }
        if (static_cast<int>(idx.size()) > nms_pre_) {
            std::stable_sort(idx.begin(), idx.end(), [](const std::pair<float, int>& a, const std::pair<float, int>& b) {
                return a.first > b.first;
            });
            idx.resize(nms_pre_);
        }
        const float* d0 = reg.channel(0);
        const float* d1 = reg.channel(1);
        const float* d2 = reg.channel(2);
        const float* d3 = reg.channel(3);
        const float fs = static_cast<float>(s);
        for (const auto& p : idx) {
            int i = p.second;
            float px = static_cast<float>(i % reg.w) * fs, py = static_cast<float>(i / reg.w) * fs;
            Box b;
            b.x1 = std::min(std::max(px - d0[i] * fs, 0.f), static_cast<float>(valid_w));
            b.y1 = std::min(std::max(py - d1[i] * fs, 0.f), static_cast<float>(valid_h));
            b.x2 = std::min(std::max(px + d2[i] * fs, 0.f), static_cast<float>(valid_w));
            b.y2 = std::min(std::max(py + d3[i] * fs, 0.f), static_cast<float>(valid_h));
            b.score = p.first;
            cand.push_back(b);
        }
    }
    return Status::Ok();
}

Status Detector::decode_yolox(const ncnn::Mat& out, std::vector<Box>& cand) const {
    const ModelMeta& m = model_.meta();
    int rows = 0;
    for (int s : strides_) rows += (m.input_height / s) * (m.input_width / s);
    const int cols = out.w;
    if (out.h * (out.dims == 3 ? out.c : 1) != rows || cols < 6 || 5 + person_class_ >= cols)
        return Status::Error(ERR_INFERENCE, "YOLOX output has " + std::to_string(out.h) + " rows of " + std::to_string(cols) +
                                                "; expected " + std::to_string(rows) + " rows of 5 + classes");
    const float* data = static_cast<const float*>(out.data);
    int r = 0;
    for (int s : strides_) {
        const int hs = m.input_height / s, ws = m.input_width / s;
        const float fs = static_cast<float>(s);
        for (int gy = 0; gy < hs; gy++)
            for (int gx = 0; gx < ws; gx++, r++) {
                const float* o = data + static_cast<size_t>(r) * cols;
                float score = o[4] * o[5 + person_class_];
                if (!(score > score_threshold_)) continue;
                float cx = (o[0] + gx) * fs, cy = (o[1] + gy) * fs;
                float w = std::exp(o[2]) * fs, h = std::exp(o[3]) * fs;
                Box b;
                b.x1 = cx - w * 0.5f;
                b.y1 = cy - h * 0.5f;
                b.x2 = cx + w * 0.5f;
                b.y2 = cy + h * 0.5f;
                b.score = score;
                cand.push_back(b);
            }
    }
    return Status::Ok();
}

Status Detector::detect(const ImageView& img, std::vector<Box>& boxes) const {
    boxes.clear();
    if (!model_.loaded()) return Status::Error(ERR_BAD_ARGUMENT, "detector not loaded");
    Status st = check_image(img);
    if (!st.ok()) return st;
    const ModelMeta& m = model_.meta();
    const std::string rule = family_ == "rtmdet" ? "mmdet" : "yolox";
    int new_w, new_h;
    letterbox_size(img.width, img.height, m.input_width, m.input_height, rule, new_w, new_h);

    Image canvas;
    canvas.width = m.input_width;
    canvas.height = m.input_height;
    canvas.pixels.assign(static_cast<size_t>(m.input_width) * m.input_height * 3, static_cast<uint8_t>(pad_value_));
    Image resized;
    const ImageView* part = &img;
    ImageView rv;
    if (new_w != img.width || new_h != img.height) {
        resize_bilinear_exact(img, resized, new_w, new_h);
        rv = resized.view();
        part = &rv;
    }
    for (int y = 0; y < new_h; y++)
        std::copy(part->data + static_cast<size_t>(y) * part->stride, part->data + static_cast<size_t>(y) * part->stride + new_w * 3,
                  canvas.pixels.begin() + static_cast<size_t>(y) * m.input_width * 3);

    std::map<std::string, ncnn::Mat> out;
    st = model_.run(model_.input_from_bgr(canvas.view()), roles_, out);
    if (!st.ok()) return st;

    std::vector<Box> cand;
    st = family_ == "rtmdet" ? decode_rtmdet(out, new_w, new_h, cand) : decode_yolox(out.at("output"), cand);
    if (!st.ok()) return st;

    float sx, sy;
    if (family_ == "yolox") {
        double r = std::min(static_cast<double>(m.input_height) / img.height, static_cast<double>(m.input_width) / img.width);
        sx = sy = static_cast<float>(r);
    } else {
        sx = static_cast<float>(static_cast<double>(new_w) / img.width);
        sy = static_cast<float>(static_cast<double>(new_h) / img.height);
    }
    const float W = static_cast<float>(img.width), H = static_cast<float>(img.height);
    for (int i : nms(cand, nms_iou_, max_detections_)) {
        Box b = cand[i];
        b.x1 = std::min(std::max(b.x1 / sx, 0.f), W);
        b.x2 = std::min(std::max(b.x2 / sx, 0.f), W);
        b.y1 = std::min(std::max(b.y1 / sy, 0.f), H);
        b.y2 = std::min(std::max(b.y2 / sy, 0.f), H);
        boxes.push_back(b);
    }
    return Status::Ok();
}

}  // namespace edgepose
