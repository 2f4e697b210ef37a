#include "edgepose/engine.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>

namespace edgepose {

Status Engine::load(const EngineConfig& c) {
    Status st = det_.load(c.det_model, c.options, c.det_score_threshold, c.det_nms_iou);
    if (!st.ok()) return st;
    if (c.pose_model.empty()) {  // detector only (boxes, no keypoints)
        tracker_.reset();
        return Status::Ok();
    }
    st = pose_.load(c.pose_model, c.options);
    if (!st.ok()) return st;
    tracker_.reset();
    return Status::Ok();
}

static double ms_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

Status Engine::process_image(const ImageView& img, std::vector<Pose>& out, Timings& t) {
    out.clear();
    t = Timings();
    if (!det_.loaded()) return Status::Error(ERR_BAD_ARGUMENT, "engine not loaded");
    const auto start = std::chrono::steady_clock::now();
    std::vector<Box> boxes;
    Status st = det_.detect(img, boxes);
    if (!st.ok()) return st;
    t.detect_ms = ms_since(start);
    if (!pose_.loaded()) {
        for (const Box& b : boxes) {
            out.emplace_back();
            out.back().box = b;
            out.back().track_id = static_cast<int>(out.size()) - 1;
        }
        t.total_ms = ms_since(start);
        return Status::Ok();
    }

    auto t0 = std::chrono::steady_clock::now();
    std::vector<Pose> poses;
    st = pose_.estimate(img, boxes, poses);
    if (!st.ok()) return st;
    t.pose_ms = ms_since(t0);

    t0 = std::chrono::steady_clock::now();
    const TrackerParams& p = tracker_.params;
    std::vector<int> keep = pose_nms(poses, pose_.meta().sigmas, p.pose_nms_threshold, p.keypoint_threshold);
    std::sort(keep.begin(), keep.end());
    for (int i : keep) {
        out.push_back(poses[i]);
        out.back().track_id = static_cast<int>(out.size()) - 1;
    }
    t.post_ms = ms_since(t0);
    t.total_ms = ms_since(start);
    return Status::Ok();
}

Status Engine::process_frame(const ImageView& img, double timestamp, std::vector<Pose>& out, Timings& t,
                             bool& detected) {
    t = Timings();
    if (!loaded()) return Status::Error(ERR_BAD_ARGUMENT, "engine not loaded");
    const auto start = std::chrono::steady_clock::now();
    double stage[3] = {0, 0, 0};
    Status st = tracker_.process(det_, pose_, img, timestamp, out, detected, stage);
    t.detect_ms = stage[0];
    t.pose_ms = stage[1];
    t.post_ms = stage[2];
    t.total_ms = ms_since(start);
    return st;
}

static void num(std::string& s, double v) {
    char buf[32];
    if (!std::isfinite(v)) {
        s += "null";  // JSON has no NaN; the parity test treats null as a failure
        return;
    }
    std::snprintf(buf, sizeof(buf), "%.9g", v);
    s += buf;
}

static void quoted(std::string& s, const std::string& v) {
    s += '"';
    for (char c : v) {
        if (c == '"' || c == '\\') { s += '\\'; s += c; }
        else if (static_cast<unsigned char>(c) < 0x20) { char b[8]; std::snprintf(b, sizeof(b), "\\u%04x", c); s += b; }
        else s += c;
    }
    s += '"';
}

std::string poses_to_json(const std::vector<Pose>& poses, int width, int height, const Timings& t) {
    std::string s = "{\"width\": " + std::to_string(width) + ", \"height\": " + std::to_string(height) + ", \"persons\": [";
    for (size_t i = 0; i < poses.size(); i++) {
        const Pose& p = poses[i];
        if (i) s += ", ";
        s += "{\"box\": [";
        num(s, p.box.x1); s += ", "; num(s, p.box.y1); s += ", "; num(s, p.box.x2); s += ", "; num(s, p.box.y2);
        s += "], \"box_score\": "; num(s, p.box.score);
        s += ", \"track_id\": " + std::to_string(p.track_id) + ", \"keypoints\": [";
        for (size_t j = 0; j < p.keypoints.size(); j++) {
            if (j) s += ", ";
            s += "["; num(s, p.keypoints[j].x); s += ", "; num(s, p.keypoints[j].y); s += "]";
        }
        s += "], \"scores\": [";
        for (size_t j = 0; j < p.keypoints.size(); j++) {
            if (j) s += ", ";
            num(s, p.keypoints[j].score);
        }
        s += "]}";
    }
    s += "], \"timings_ms\": {\"detect\": "; num(s, t.detect_ms);
    s += ", \"pose\": "; num(s, t.pose_ms);
    s += ", \"post\": "; num(s, t.post_ms);
    s += ", \"total\": "; num(s, t.total_ms);
    s += "}}";
    return s;
}

std::string error_to_json(const Status& st) {
    std::string s = "{\"error\": {\"code\": " + std::to_string(st.code) + ", \"kind\": ";
    quoted(s, status_code_name(st.code));
    s += ", \"message\": ";
    quoted(s, st.message);
    s += "}}";
    return s;
}

}  // namespace edgepose
