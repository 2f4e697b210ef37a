#include "edgepose/ncnn_model.h"

#include <sys/stat.h>

#include <set>

#include "cpu.h"
#if NCNN_VULKAN
#include "gpu.h"
#endif

namespace edgepose {

bool is_arm_build() {
#if defined(__aarch64__) || defined(__arm__)
    return true;
#else
    return false;
#endif
}

static bool file_exists(const std::string& p) {
    struct stat st;
    return stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

Status NcnnModel::load(const std::string& model_path, const std::string& task, const RunOptions& options) {
    loaded_ = false;
    const std::string& prec = options.precision;
    if (!prec.empty() && prec != "fp32" && prec != "fp16" && prec != "int8")
        return Status::Error(ERR_BAD_ARGUMENT, "precision '" + prec + "' is not one of fp32, fp16, int8");
    if (options.threads < 0)
        return Status::Error(ERR_BAD_ARGUMENT, "threads must be >= 0, got " + std::to_string(options.threads));
    std::string json_path;
    Status st = find_model(model_path, prec, task, json_path);
    if (!st.ok()) return st;
    st = load_model_meta(json_path, meta_);
    if (!st.ok()) return st;
    if (!task.empty() && meta_.task != task)
        return Status::Error(ERR_BAD_MODEL, json_path + ": is a '" + meta_.task + "' model, expected a '" + task + "' model");
    if (prec == "int8" && meta_.precision != "int8" && meta_.precision != "mixed")
        return Status::Error(ERR_BAD_MODEL, json_path + ": is a " + meta_.precision +
                                                " model; int8 needs a quantized model (make one with `edgepose quantize`)");
    const std::string param = meta_.param_path(), bin = meta_.bin_path();
    for (const std::string& p : {param, bin})
        if (!file_exists(p))
            return Status::Error(ERR_NOT_FOUND, p + ": missing (named by " + json_path + "); re-run `edgepose convert`");

    const bool int8_model = meta_.precision == "int8" || meta_.precision == "mixed";
    bool fp16_default = is_arm_build();
    gpu_.clear();
    net_.clear();
#if NCNN_VULKAN
    // ncnn itself would fall back to the CPU silently; a GPU that cannot be used is an error here
    // (the same cases as edge_runtime/device.py).
    int gpu_index = -1;
    if (options.use_gpu) {
        const int count = ncnn::get_gpu_count();
        if (count == 0)
            return Status::Error(ERR_NOT_FOUND, "GPU requested but no Vulkan device was found (no Vulkan loader or "
                                                "driver); use the CPU");
        gpu_index = options.gpu_device < 0 ? ncnn::get_default_gpu_index() : options.gpu_device;
        if (gpu_index >= count)
            return Status::Error(ERR_BAD_ARGUMENT, "there is no Vulkan device " + std::to_string(gpu_index) + " (" +
                                                       std::to_string(count) + " device(s))");
        if (int8_model || prec == "int8")
            return Status::Error(ERR_BAD_ARGUMENT, json_path + ": int8 models run on the CPU only (ncnn's Vulkan "
                                                               "int8 path is not validated by edgepose)");
        const ncnn::GpuInfo& info = ncnn::get_gpu_info(gpu_index);
        fp16_default = info.support_fp16_storage();
        gpu_ = "gpu:" + std::to_string(gpu_index) + " " + info.device_name() +
               " fp16-storage " + std::to_string(int(info.support_fp16_storage())) +
               " fp16-arithmetic " + std::to_string(int(info.support_fp16_arithmetic())) +
               " int8-storage " + std::to_string(int(info.support_int8_storage())) +
               " int8-arithmetic " + std::to_string(int(info.support_int8_arithmetic()));
    }
#else
    if (options.use_gpu)
        return Status::Error(ERR_BAD_ARGUMENT, "GPU (Vulkan) requested but this build of ncnn has no Vulkan support");
#endif
    const bool use_fp16 = prec == "fp16" ? true : prec == "fp32" ? false : fp16_default;
    fp16_ = use_fp16;
    ncnn::Option& opt = net_.opt;
    opt.use_fp16_storage = opt.use_fp16_packed = opt.use_fp16_arithmetic = use_fp16;
    opt.use_bf16_storage = false;
    opt.use_int8_inference = int8_model;
#if NCNN_VULKAN
    opt.use_vulkan_compute = options.use_gpu;
    if (options.use_gpu) net_.set_vulkan_device(gpu_index);
#else
    opt.use_vulkan_compute = false;
#endif
    if (options.threads > 0) opt.num_threads = options.threads;

    if (net_.load_param(param.c_str()) != 0)
        return Status::Error(ERR_BAD_MODEL, param + ": ncnn cannot parse this param file (unknown layer type or corrupt "
                                                    "file); re-convert with `edgepose convert`");
    if (net_.load_model(bin.c_str()) != 0)
        return Status::Error(ERR_BAD_MODEL, bin + ": ncnn cannot read the weights (truncated or not matching the "
                                                  "param file); re-convert with `edgepose convert`");
    std::set<std::string> blobs;
    for (const ncnn::Blob& b : net_.blobs()) blobs.insert(b.name);
    std::string missing;
    std::vector<std::string> wanted = {meta_.input_blob};
    for (const auto& kv : meta_.output_blobs) wanted.push_back(kv.second);
    for (const auto& b : wanted)
        if (!blobs.count(b)) missing += (missing.empty() ? "" : ", ") + b;
    if (!missing.empty())
        return Status::Error(ERR_BAD_MODEL, param + ": has no blob named " + missing + " (named in " + json_path +
                                                "); the metadata does not belong to this param file");

    // How uint8 BGR becomes the graph input (edge_runtime NcnnModel._input_rule).
    std::string order = meta_.normalization_folded ? meta_.channel_order : meta_.model_channel_order;
    if (order != "bgr" && order != "rgb")
        return Status::Error(ERR_BAD_MODEL, json_path + ": channel order '" + order + "' is not bgr or rgb");
    pixel_type_ = order == "bgr" ? ncnn::Mat::PIXEL_BGR : ncnn::Mat::PIXEL_BGR2RGB;
    normalize_ = !meta_.normalization_folded;
    if (normalize_) {
        for (int i = 0; i < 3; i++) {
            mean_[i] = meta_.mean[i];
            norm_[i] = 1.f / meta_.std_[i];
        }
    } else if (meta_.pixel_range[0] != 0.f || meta_.pixel_range[1] != 255.f) {
        // v' = lo + v * (hi - lo) / 255, as substract_mean_normalize: (v - mean) * norm
        const float k = (meta_.pixel_range[1] - meta_.pixel_range[0]) / 255.f;
        if (k == 0.f) return Status::Error(ERR_BAD_MODEL, json_path + ": pixel_range is empty");
        normalize_ = true;
        for (int i = 0; i < 3; i++) {
            mean_[i] = -meta_.pixel_range[0] / k;
            norm_[i] = k;
        }
    }
    loaded_ = true;
    return Status::Ok();
}

ncnn::Mat NcnnModel::input_from_bgr(const ImageView& img) const {
    ncnn::Mat in = ncnn::Mat::from_pixels(img.data, pixel_type_, img.width, img.height, img.stride);
    if (normalize_) in.substract_mean_normalize(mean_, norm_);
    return in;
}

Status NcnnModel::run(const ncnn::Mat& input, const std::vector<std::string>& roles,
                      std::map<std::string, ncnn::Mat>& out) const {
    if (!loaded_) return Status::Error(ERR_BAD_ARGUMENT, "model not loaded");
    ncnn::Extractor ex = net_.create_extractor();
    if (ex.input(meta_.input_blob.c_str(), input) != 0)
        return Status::Error(ERR_INFERENCE, meta_.name + ": ncnn refused the input blob '" + meta_.input_blob + "'");
    for (const auto& role : roles) {
        const std::string blob = meta_.output_blob(role);
        ncnn::Mat m;
        if (blob.empty() || ex.extract(blob.c_str(), m) != 0 || m.empty())
            return Status::Error(ERR_INFERENCE, meta_.name + ": ncnn produced no output for blob '" + blob + "' (role " +
                                                    role + "); the model file may be broken");
        // fp16/bf16 storage can hand back packed or half tensors; callers read plain fp32.
        if (m.elempack != 1) {
            ncnn::Mat flat;
            ncnn::convert_packing(m, flat, 1);
            m = flat;
        }
        if (m.elemsize != 4u) {
            ncnn::Mat f32;
            ncnn::cast_float16_to_float32(m, f32);
            m = f32;
        }
        out[role] = m;
    }
    return Status::Ok();
}

}  // namespace edgepose
