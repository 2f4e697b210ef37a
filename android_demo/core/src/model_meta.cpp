#include "edgepose/model_meta.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "edgepose/json.h"

namespace edgepose {

static const char* kFormat = "edgepose-model/1";

static bool is_file(const std::string& p) {
    struct stat st;
    return stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

static bool is_dir(const std::string& p) {
    struct stat st;
    return stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

static bool ends_with(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

static std::string dir_of(const std::string& p) {
    size_t slash = p.find_last_of('/');
    return slash == std::string::npos ? std::string(".") : p.substr(0, slash);
}

std::string ModelMeta::param_path() const { return dir_of(json_path) + "/" + param; }
std::string ModelMeta::bin_path() const { return dir_of(json_path) + "/" + bin; }

std::string ModelMeta::output_blob(const std::string& role) const {
    auto it = output_blobs.find(role);
    return it == output_blobs.end() ? std::string() : it->second;
}

static Status read_json(const std::string& path, JsonValue& doc) {
    std::ifstream f(path, std::ios::binary);
    if (!f) return Status::Error(ERR_NOT_FOUND, path + ": model metadata file not found");
    std::stringstream ss;
    ss << f.rdbuf();
    std::string error;
    if (!JsonValue::parse(ss.str(), doc, error))
        return Status::Error(ERR_BAD_MODEL, path + ": cannot read model metadata (" + error + ")");
    if (!doc.is_object()) return Status::Error(ERR_BAD_MODEL, path + ": model metadata is not a JSON object");
    return Status::Ok();
}

static void read_floats3(const JsonValue& v, float* out) {
    if (v.is_array() && v.size() == 3)
        for (size_t i = 0; i < 3; i++) out[i] = static_cast<float>(v[i].number(out[i]));
}

Status load_model_meta(const std::string& json_path, ModelMeta& m) {
    JsonValue d;
    Status st = read_json(json_path, d);
    if (!st.ok()) return st;
    if (!d["format"].is_string() || d["format"].str() != kFormat)
        return Status::Error(ERR_BAD_MODEL, json_path + ": not an edgepose model file (format '" +
                                                d["format"].str() + "', expected '" + kFormat + "')");
    std::string missing;
    for (const char* k : {"name", "task", "param", "bin", "input_blob", "input_width", "input_height"})
        if (!d.has(k)) missing += (missing.empty() ? "" : ", ") + std::string(k);
    if (!missing.empty()) return Status::Error(ERR_BAD_MODEL, json_path + ": model metadata lacks " + missing);

    m = ModelMeta();
    m.json_path = json_path;
    m.name = d["name"].str();
    m.task = d["task"].str();
    m.param = d["param"].str();
    m.bin = d["bin"].str();
    m.input_blob = d["input_blob"].str();
    m.input_width = static_cast<int>(d["input_width"].number());
    m.input_height = static_cast<int>(d["input_height"].number());
    if (m.input_width <= 0 || m.input_height <= 0 || m.input_width > 8192 || m.input_height > 8192)
        return Status::Error(ERR_BAD_MODEL, json_path + ": bad input size " + std::to_string(m.input_width) + "x" +
                                                std::to_string(m.input_height));
    if (d["channel_order"].is_string()) m.channel_order = d["channel_order"].str();
    if (d["pixel_range"].is_array() && d["pixel_range"].size() == 2) {
        m.pixel_range[0] = static_cast<float>(d["pixel_range"][0].number(0.0));
        m.pixel_range[1] = static_cast<float>(d["pixel_range"][1].number(255.0));
    }
    if (d.has("normalization_folded")) m.normalization_folded = d["normalization_folded"].boolean(true);
    read_floats3(d["mean"], m.mean);
    read_floats3(d["std"], m.std_);
    if (d["model_channel_order"].is_string()) m.model_channel_order = d["model_channel_order"].str();
    for (const auto& kv : d["output_blobs"].members())
        if (kv.second.is_string()) m.output_blobs[kv.first] = kv.second.str();
    if (d["precision"].is_string()) m.precision = d["precision"].str();
    for (const auto& v : d["fp32_layers"].items())
        if (v.is_string()) m.fp32_layers.push_back(v.str());
    if (d["simcc_split_ratio"].is_number()) m.simcc_split_ratio = static_cast<float>(d["simcc_split_ratio"].number());

    const JsonValue& kp = d["keypoints"];
    for (const auto& v : kp["names"].items()) m.keypoint_names.push_back(v.str());
    for (const auto& e : kp["skeleton"].items())
        if (e.is_array() && e.size() == 2)
            m.skeleton.emplace_back(static_cast<int>(e[0].number()), static_cast<int>(e[1].number()));
    for (const auto& v : kp["sigmas"].items()) m.sigmas.push_back(static_cast<float>(v.number(0.05)));
    auto colors = [](const JsonValue& list, std::vector<std::vector<int>>& out) {
        for (const auto& c : list.items())
            if (c.is_array() && c.size() == 3)
                out.push_back({static_cast<int>(c[0].number()), static_cast<int>(c[1].number()), static_cast<int>(c[2].number())});
    };
    colors(kp["keypoint_colors"], m.keypoint_colors);
    colors(kp["skeleton_colors"], m.skeleton_colors);

    const JsonValue& det = d["detector"];
    if (det.is_object()) {
        DetectorParams& p = m.detector;
        p.family = det["family"].str();
        if (p.family == "yolox") p.nms_iou = 0.45f;
        p.strides.clear();
        for (const auto& v : det["strides"].items()) p.strides.push_back(static_cast<int>(v.number()));
        if (p.strides.empty()) p.strides = {8, 16, 32};
        p.num_classes = static_cast<int>(det["num_classes"].number(p.num_classes));
        p.person_class = static_cast<int>(det["person_class"].number(p.person_class));
        p.pad_value = static_cast<int>(det["pad_value"].number(p.pad_value));
        p.keep_ratio = det["keep_ratio"].boolean(p.keep_ratio);
        p.score_threshold = static_cast<float>(det["score_threshold"].number(p.score_threshold));
        p.nms_iou = static_cast<float>(det["nms_iou"].number(p.nms_iou));
        p.max_per_img = static_cast<int>(det["max_per_img"].number(p.max_per_img));
        p.nms_pre = static_cast<int>(det["nms_pre"].number(p.nms_pre));
    }
    if (m.task != "pose" && m.task != "detect")
        return Status::Error(ERR_BAD_MODEL, json_path + ": unknown task '" + m.task + "' (expected pose or detect)");
    return Status::Ok();
}

Status find_model(const std::string& path, const std::string& precision, const std::string& task,
                  std::string& json_path) {
    if (is_file(path)) {
        if (ends_with(path, ".json")) { json_path = path; return Status::Ok(); }
        std::string stem;
        if (ends_with(path, ".ncnn.param")) stem = path.substr(0, path.size() - 11);
        else if (ends_with(path, ".ncnn.bin")) stem = path.substr(0, path.size() - 9);
        else return Status::Error(ERR_BAD_MODEL, path + ": not a model (expected a folder, .json or .ncnn.param)");
        if (is_file(stem + ".json")) { json_path = stem + ".json"; return Status::Ok(); }
        return Status::Error(ERR_NOT_FOUND, path + ": no metadata file " + stem.substr(stem.find_last_of('/') + 1) +
                                                ".json beside it (models come from `edgepose convert`)");
    }
    if (!is_dir(path)) return Status::Error(ERR_NOT_FOUND, path + ": model not found");

    std::vector<std::string> names;
    if (DIR* dir = opendir(path.c_str())) {
        while (dirent* e = readdir(dir)) {
            std::string fn = e->d_name;
            if (ends_with(fn, ".json")) names.push_back(fn);
        }
        closedir(dir);
    }
    std::sort(names.begin(), names.end());
    std::vector<std::pair<std::string, std::string>> metas;  // (path, precision)
    for (const auto& fn : names) {
        std::string full = path + "/" + fn;
        JsonValue d;
        if (!read_json(full, d).ok()) continue;
        if (d["format"].str() != kFormat) continue;
        if (!task.empty() && d["task"].str() != task) continue;
        metas.emplace_back(full, d["precision"].is_string() ? d["precision"].str() : "fp32");
    }
    if (metas.empty())
        return Status::Error(ERR_BAD_MODEL, path + ": folder holds no converted model (no " + kFormat + " .json file)");
    auto pick = [&](const std::string& prec) -> bool {
        for (const auto& m : metas)
            if (m.second == prec) { json_path = m.first; return true; }
        return false;
    };
    if (precision.empty()) {
        if (!pick("fp32")) json_path = metas[0].first;
        return Status::Ok();
    }
    if (pick(precision)) return Status::Ok();
    if (precision == "fp16" && pick("fp32")) return Status::Ok();
    std::string have;
    for (const auto& m : metas)
        if (have.find(m.second) == std::string::npos) have += (have.empty() ? "" : ", ") + m.second;
    return Status::Error(ERR_BAD_ARGUMENT, path + ": no " + precision + " variant (have: " + have + ")");
}

}  // namespace edgepose
