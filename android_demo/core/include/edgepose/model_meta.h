// The metadata file beside every converted model, as edge_runtime/model_meta.py writes it.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "edgepose/status.h"

namespace edgepose {

struct DetectorParams {
    std::string family;               // "rtmdet" | "yolox"
    std::vector<int> strides;         // 8, 16, 32
    int num_classes = 1;
    int person_class = 0;
    int pad_value = 114;
    bool keep_ratio = true;
    float score_threshold = 0.05f;    // the official evaluation threshold (not used by the pipeline)
    float nms_iou = 0.6f;             // family default when absent
    int max_per_img = 100;
    int nms_pre = 1000;
};

struct ModelMeta {
    std::string json_path;            // where it was read from
    std::string name, task, param, bin, input_blob;
    int input_width = 0, input_height = 0;
    std::string channel_order = "bgr";
    float pixel_range[2] = {0.f, 255.f};  // what the folded graph expects for pixel values 0..255
    bool normalization_folded = true;
    float mean[3] = {0, 0, 0};
    float std_[3] = {1, 1, 1};
    std::string model_channel_order = "rgb";
    std::map<std::string, std::string> output_blobs;
    std::string precision = "fp32";
    std::vector<std::string> fp32_layers;
    float simcc_split_ratio = 2.0f;
    // Pose keypoint set (may be empty for detectors).
    std::vector<std::string> keypoint_names;
    std::vector<std::pair<int, int>> skeleton;
    std::vector<float> sigmas;
    std::vector<std::vector<int>> keypoint_colors, skeleton_colors;  // RGB, as mmpose's dataset meta
    DetectorParams detector;

    std::string param_path() const;
    std::string bin_path() const;
    int num_keypoints() const { return static_cast<int>(keypoint_names.size()); }
    std::string output_blob(const std::string& role) const;
};

// Parse a metadata JSON file (format "edgepose-model/1").
Status load_model_meta(const std::string& json_path, ModelMeta& meta);

// Resolve a folder / .json / .ncnn.param to a metadata path, as edge_runtime.model_meta.find_model:
// a folder picks the variant of `precision` ("" = fp32 first), fp16 falls back to fp32 files.
Status find_model(const std::string& path, const std::string& precision, const std::string& task,
                  std::string& json_path);

}  // namespace edgepose
