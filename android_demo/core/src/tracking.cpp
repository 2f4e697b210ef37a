#include "edgepose/tracking.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>

namespace edgepose {

static float sigma_of(const std::vector<float>& sigmas, size_t k, size_t j) {
    return sigmas.size() == k ? sigmas[j] : kDefaultSigma;
}

Box keypoint_box(const Pose& p, float score_threshold) {
    bool any = false;
    for (const auto& k : p.keypoints) any |= k.score >= score_threshold;
    Box b;
    b.x1 = b.y1 = 1e9f;
    b.x2 = b.y2 = -1e9f;
    for (const auto& k : p.keypoints) {
        if (any && !(k.score >= score_threshold)) continue;
        b.x1 = std::min(b.x1, k.x); b.y1 = std::min(b.y1, k.y);
        b.x2 = std::max(b.x2, k.x); b.y2 = std::max(b.y2, k.y);
    }
    return b;
}

static float box_area(const Box& b) { return std::max(b.x2 - b.x1, 0.f) * std::max(b.y2 - b.y1, 0.f); }

float iou(const Box& a, const Box& b) {
    float w = std::max(std::min(a.x2, b.x2) - std::max(a.x1, b.x1), 0.f);
    float h = std::max(std::min(a.y2, b.y2) - std::max(a.y1, b.y1), 0.f);
    float inter = w * h;
    float uni = box_area(a) + box_area(b) - inter;
    return uni > 0 ? inter / std::max(uni, 1e-9f) : 0.f;
}

float oks(const Pose& a, const Pose& b, const Box& box_a, const std::vector<float>& sigmas, float score_threshold) {
    const size_t k = a.keypoints.size();
    if (k == 0 || b.keypoints.size() != k) return 0.f;
    const float area = std::max(box_area(box_a), 1.f);
    float sum = 0.f;
    int cnt = 0;
    for (size_t j = 0; j < k; j++) {
        const Keypoint& p = a.keypoints[j];
        const Keypoint& q = b.keypoints[j];
        if (!(p.score >= score_threshold && q.score >= score_threshold)) continue;
        float dx = p.x - q.x, dy = p.y - q.y;
        float d2 = dx * dx + dy * dy;
        if (!std::isfinite(d2)) continue;
        float s2 = 2.f * sigma_of(sigmas, k, j);
        float e = d2 / (2.f * area * s2 * s2);
        sum += std::exp(-std::min(e, 80.f));
        cnt++;
    }
    return cnt > 0 ? sum / cnt : 0.f;
}

std::vector<int> pose_nms(const std::vector<Pose>& poses, const std::vector<float>& sigmas, float oks_threshold,
                          float score_threshold) {
    const int n = static_cast<int>(poses.size());
    std::vector<float> conf(n);
    for (int i = 0; i < n; i++) conf[i] = poses[i].mean_score();
    std::vector<int> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return conf[a] > conf[b]; });
    std::vector<std::vector<float>> m(n, std::vector<float>(n));
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) m[i][j] = oks(poses[i], poses[j], poses[i].box, sigmas, score_threshold);
    std::vector<int> keep;
    std::vector<char> suppressed(n, 0);
    for (int i : order) {
        if (suppressed[i]) continue;
        keep.push_back(i);
        for (int j = 0; j < n; j++)
            if (std::min(m[i][j], m[j][i]) > oks_threshold) suppressed[j] = 1;
    }
    return keep;
}

std::vector<std::pair<int, int>> greedy_match(const std::vector<std::vector<float>>& sim, float min_similarity) {
    std::vector<std::pair<int, int>> pairs;
    if (sim.empty() || sim[0].empty()) return pairs;
    const int rows = static_cast<int>(sim.size()), cols = static_cast<int>(sim[0].size());
    std::vector<int> order(rows * cols);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](int a, int b) { return sim[a / cols][a % cols] > sim[b / cols][b % cols]; });
    std::vector<char> used_r(rows, 0), used_c(cols, 0);
    for (int f : order) {
        int r = f / cols, c = f % cols;
        if (sim[r][c] < min_similarity) break;
        if (used_r[r] || used_c[c]) continue;
        used_r[r] = used_c[c] = 1;
        pairs.emplace_back(r, c);
    }
    return pairs;
}

static double one_euro_alpha(double cutoff, double dt) {
    const double tau = 1.0 / (2.0 * M_PI * cutoff);
    return 1.0 / (1.0 + tau / dt);
}

void OneEuroFilter::apply(std::vector<Keypoint>& kps, double t, double scale) {
    const size_t k = kps.size();
    if (!(scale > 1e-6 && std::isfinite(scale))) scale = 1.0;
    std::vector<char> valid(k);
    for (size_t j = 0; j < k; j++)
        valid[j] = kps[j].score >= p_.score_threshold && std::isfinite(kps[j].x) && std::isfinite(kps[j].y);
    if (!init_ || x_.size() != k) {
        init_ = true;
        x_.resize(k); y_.resize(k); dx_.assign(k, 0.0); dy_.assign(k, 0.0); t_seen_.resize(k);
        for (size_t j = 0; j < k; j++) {
            x_[j] = kps[j].x;
            y_[j] = kps[j].y;
            t_seen_[j] = valid[j] ? t : NAN;
        }
        return;
    }
    for (size_t j = 0; j < k; j++) {
        if (!valid[j]) continue;
        const double dt = t - t_seen_[j];  // NaN where never seen
        const bool fresh = !(dt <= p_.max_gap);
        const bool smooth = dt > 0 && dt <= p_.max_gap;
        if (smooth) {
            const double xs = kps[j].x / scale, ys = kps[j].y / scale;
            const double px = x_[j] / scale, py = y_[j] / scale;
            const double a_d = one_euro_alpha(p_.d_cutoff, dt);
            const double ndx = a_d * ((xs - px) / dt) + (1 - a_d) * dx_[j];
            const double ndy = a_d * ((ys - py) / dt) + (1 - a_d) * dy_[j];
            const double cutoff = p_.min_cutoff + p_.beta * std::sqrt(ndx * ndx + ndy * ndy);
            const double a = one_euro_alpha(cutoff, dt);
            const double fx = (a * xs + (1 - a) * px) * scale, fy = (a * ys + (1 - a) * py) * scale;
            kps[j].x = static_cast<float>(fx);
            kps[j].y = static_cast<float>(fy);
            x_[j] = fx; y_[j] = fy; dx_[j] = ndx; dy_[j] = ndy; t_seen_[j] = t;
        } else if (fresh) {
            x_[j] = kps[j].x; y_[j] = kps[j].y; dx_[j] = dy_[j] = 0.0; t_seen_[j] = t;
        } else if (dt == 0) {  // same timestamp twice: keep the old estimate
            kps[j].x = static_cast<float>(x_[j]);
            kps[j].y = static_cast<float>(y_[j]);
        }
    }
}

void Tracker::reset() {
    tracks_.clear();
    next_id_ = 0;
    frame_ = -1;
}

void Tracker::update(std::vector<Pose>& poses) {
    frame_++;
    const int n = static_cast<int>(poses.size());
    // Ids the caller already decided (a box carried from that track's pose) stay when the track lives.
    std::vector<int> taken;
    for (auto& p : poses) {
        if (p.track_id >= 0 && !tracks_.count(p.track_id)) p.track_id = -1;
        if (p.track_id >= 0) taken.push_back(p.track_id);
    }
    std::vector<int> live, free;
    for (const auto& kv : tracks_)
        if (std::find(taken.begin(), taken.end(), kv.first) == taken.end()) live.push_back(kv.first);
    for (int c = 0; c < n; c++)
        if (poses[c].track_id < 0) free.push_back(c);
    if (!live.empty() && !free.empty()) {
        std::vector<std::vector<float>> sim(live.size(), std::vector<float>(free.size()));
        for (size_t r = 0; r < live.size(); r++) {
            const Track& t = tracks_[live[r]];
            for (size_t c = 0; c < free.size(); c++) {
                const Pose& q = poses[free[c]];
                float s = iou(t.pose.box, q.box);
                if (use_oks) s = std::max(s, oks(t.pose, q, t.pose.box, sigmas, score_threshold));
                sim[r][c] = s;
            }
        }
        for (const auto& rc : greedy_match(sim, min_similarity)) poses[free[rc.second]].track_id = live[rc.first];
    }
    for (auto& p : poses) {
        if (p.track_id < 0) p.track_id = next_id_++;
        Track& t = tracks_[p.track_id];
        t.pose = p;
        t.last_frame = frame_;
    }
    for (auto it = tracks_.begin(); it != tracks_.end();)
        it = frame_ - it->second.last_frame > max_age ? tracks_.erase(it) : std::next(it);
}

void PoseTracker::reset() {
    tracker_.reset();
    filters_.clear();
    last_.clear();
    frame_index_ = -1;
    since_detection_ = -1;
}

bool PoseTracker::carried_boxes(int w, int h, std::vector<Box>& boxes, std::vector<int>& ids) const {
    boxes.clear();
    ids.clear();
    if (last_.empty() || last_w_ != w || last_h_ != h) return false;
    const TrackerParams& p = params;
    for (const Pose& pose : last_) {
        float conf = pose.mean_score();
        int enough = 0;
        for (const auto& k : pose.keypoints) enough += k.score >= p.keypoint_threshold;
        if (!(conf >= p.min_pose_score && enough >= p.min_keypoints)) continue;
        Box tight = keypoint_box(pose, p.keypoint_threshold);
        // expand_boxes then limit_box_change against the previous box
        float cx = (tight.x1 + tight.x2) / 2, cy = (tight.y1 + tight.y2) / 2;
        float hw = (tight.x2 - tight.x1) / 2 * p.box_expand, hh = (tight.y2 - tight.y1) / 2 * p.box_expand;
        Box e{cx - hw, cy - hh, cx + hw, cy + hh, 0};
        float ncx = (e.x1 + e.x2) / 2, ncy = (e.y1 + e.y2) / 2;
        float nw = std::max(e.x2 - e.x1, 1.f), nh = std::max(e.y2 - e.y1, 1.f);
        float ow = std::max(pose.box.x2 - pose.box.x1, 1.f), oh = std::max(pose.box.y2 - pose.box.y1, 1.f);
        nw = std::min(std::max(nw, ow / p.max_box_change), ow * p.max_box_change);
        nh = std::min(std::max(nh, oh / p.max_box_change), oh * p.max_box_change);
        Box b{ncx - nw / 2, ncy - nh / 2, ncx + nw / 2, ncy + nh / 2, conf};
        b.x1 = std::min(std::max(b.x1, 0.f), static_cast<float>(w));
        b.x2 = std::min(std::max(b.x2, 0.f), static_cast<float>(w));
        b.y1 = std::min(std::max(b.y1, 0.f), static_cast<float>(h));
        b.y2 = std::min(std::max(b.y2, 0.f), static_cast<float>(h));
        if (b.x2 - b.x1 >= 2 && b.y2 - b.y1 >= 2) {
            boxes.push_back(b);
            ids.push_back(pose.track_id);
        }
    }
    return !boxes.empty();
}

static double ms_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

Status PoseTracker::process(const Detector& det, const PoseEstimator& pose, const ImageView& img, double timestamp,
                            std::vector<Pose>& out, bool& detected, double stage_ms[3]) {
    out.clear();
    Status st = check_image(img);
    if (!st.ok()) return st;
    if (params.det_every < 1) return Status::Error(ERR_BAD_ARGUMENT, "det_every must be >= 1");
    frame_index_++;
    const double fps = params.fps > 0 ? params.fps : 30.0;
    const double t = timestamp < 0 ? frame_index_ / fps : timestamp;
    if (tracker_.sigmas.empty()) {
        tracker_.sigmas = pose.meta().sigmas;
        tracker_.score_threshold = params.keypoint_threshold;
    }

    auto t0 = std::chrono::steady_clock::now();
    std::vector<Box> boxes;
    std::vector<int> known_ids;
    const bool due = since_detection_ < 0 || since_detection_ + 1 >= params.det_every;
    bool carried = !due && carried_boxes(img.width, img.height, boxes, known_ids);
    if (!carried) {
        st = det.detect(img, boxes);
        if (!st.ok()) return st;
        since_detection_ = 0;
        detected = true;
    } else {
        since_detection_++;
        detected = false;
    }
    stage_ms[0] += ms_since(t0);

    t0 = std::chrono::steady_clock::now();
    std::vector<Pose> poses;
    st = pose.estimate(img, boxes, poses);
    if (!st.ok()) return st;
    // A carried box keeps the id of the pose it came from; detections are matched.
    for (size_t i = 0; i < poses.size(); i++) poses[i].track_id = carried ? known_ids[i] : -1;
    stage_ms[1] += ms_since(t0);

    t0 = std::chrono::steady_clock::now();
    std::vector<int> keep = pose_nms(poses, pose.meta().sigmas, params.pose_nms_threshold, params.keypoint_threshold);
    std::sort(keep.begin(), keep.end());
    for (int i : keep) out.push_back(poses[i]);
    tracker_.update(out);
    last_ = out;
    last_w_ = img.width;
    last_h_ = img.height;
    if (params.smooth) {
        OneEuroParams ep;
        ep.score_threshold = params.keypoint_threshold;
        for (Pose& p : out) {
            auto it = filters_.find(p.track_id);
            if (it == filters_.end()) it = filters_.emplace(p.track_id, OneEuroFilter(ep)).first;
            double size = std::max(p.box.x2 - p.box.x1, p.box.y2 - p.box.y1);
            it->second.apply(p.keypoints, t, size);
        }
    }
    for (auto it = filters_.begin(); it != filters_.end();)
        it = tracker_.alive(it->first) ? std::next(it) : filters_.erase(it);
    stage_ms[2] += ms_since(t0);
    return Status::Ok();
}

}  // namespace edgepose
