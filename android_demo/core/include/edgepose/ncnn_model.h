// One converted model (metadata + .ncnn.param/.bin) in one ncnn::Net (edge_runtime/ncnn_model.py).
#pragma once

#include <map>
#include <string>

#include "edgepose/image.h"
#include "edgepose/model_meta.h"
#include "edgepose/status.h"
#include "net.h"

namespace edgepose {

struct RunOptions {
    // "fp32" | "fp16" | "int8" | "" (fp16 on ARM, fp32 elsewhere), as the Python runtime.
    std::string precision;
    int threads = 0;          // 0 = ncnn's default
    bool use_gpu = false;     // Vulkan; only where ncnn was built with it (the host build; not aarch64)
    int gpu_device = -1;      // Vulkan device index; -1 = ncnn's default device
};

class NcnnModel {
public:
    Status load(const std::string& model_path, const std::string& task, const RunOptions& options);
    bool loaded() const { return loaded_; }
    const ModelMeta& meta() const { return meta_; }
    bool fp16() const { return fp16_; }
    // The Vulkan device the net runs on ("" on the CPU), e.g. "gpu:0 llvmpipe (...) fp16 1 int8 1".
    const std::string& gpu_description() const { return gpu_; }

    // uint8 BGR pixels (exactly the model input size) -> the input Mat (channel order, scaling).
    ncnn::Mat input_from_bgr(const ImageView& img) const;
    // Run one input; fills {role: Mat} for every role in `roles`.
    Status run(const ncnn::Mat& input, const std::vector<std::string>& roles,
               std::map<std::string, ncnn::Mat>& out) const;

private:
    ncnn::Net net_;
    ModelMeta meta_;
    bool loaded_ = false;
    bool fp16_ = false;
    std::string gpu_;
    int pixel_type_ = 0;
    bool normalize_ = false;
    float mean_[3] = {0, 0, 0}, norm_[3] = {1, 1, 1};
};

bool is_arm_build();

}  // namespace edgepose
