// Person detectors (RTMDet, YOLOX) with the decode/NMS rules of edge_runtime/detector.py.
#pragma once

#include <vector>

#include "edgepose/image.h"
#include "edgepose/ncnn_model.h"

namespace edgepose {

// Constants mirrored from edge_runtime/constants.py.
constexpr int kLetterboxPadValue = 114;
constexpr int kMaxDetections = 100;
constexpr int kNmsPre = 1000;

struct Box {
    float x1 = 0, y1 = 0, x2 = 0, y2 = 0;
    float score = 0;
};

// Greedy NMS, highest score first (stable on ties); keeps IoU <= threshold. Returns indices.
std::vector<int> nms(const std::vector<Box>& boxes, float iou_threshold, int max_keep);

class Detector {
public:
    // score_threshold < 0: the family's person threshold (0.3; the metadata's value is the official
    // evaluation threshold, as edge_runtime/detector.py). nms_iou < 0: the metadata's, else the family's.
    Status load(const std::string& model_path, const RunOptions& options, float score_threshold = -1.f,
                float nms_iou = -1.f);
    Status detect(const ImageView& img, std::vector<Box>& boxes) const;
    const ModelMeta& meta() const { return model_.meta(); }
    bool loaded() const { return model_.loaded(); }
    const std::string& family() const { return family_; }

private:
    NcnnModel model_;
    std::string family_;
    std::vector<int> strides_;
    int person_class_ = 0;
    float score_threshold_ = 0.3f, nms_iou_ = 0.6f;
    int pad_value_ = kLetterboxPadValue;
    int max_detections_ = kMaxDetections;
    int nms_pre_ = kNmsPre;
    std::vector<std::string> roles_;

    Status decode_rtmdet(const std::map<std::string, ncnn::Mat>& out, int valid_w, int valid_h,
                         std::vector<Box>& cand) const;
    Status decode_yolox(const ncnn::Mat& out, std::vector<Box>& cand) const;
};

// Letterbox size inside the (W, H) input: rule "mmdet" (RTMDet) or "yolox".
void letterbox_size(int width, int height, int in_w, int in_h, const std::string& rule, int& new_w, int& new_h);

}  // namespace edgepose
