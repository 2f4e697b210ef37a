// Pose NMS (OKS), track ids (greedy IoU/OKS) and One-Euro smoothing: the rules and parameters of
// edge_runtime/pose_nms.py, tracking.py, one_euro.py and pose_tracker.py.
#pragma once

#include <map>
#include <vector>

#include "edgepose/pose.h"

namespace edgepose {

constexpr float kDefaultSigma = 0.05f;   // pose_nms.DEFAULT_SIGMA

// Tight box around each pose's keypoints with score >= threshold (all keypoints if none is).
Box keypoint_box(const Pose& p, float score_threshold);
float iou(const Box& a, const Box& b);
// OKS of pose a against pose b with the area of `box_a`, keypoints confident in both.
float oks(const Pose& a, const Pose& b, const Box& box_a, const std::vector<float>& sigmas, float score_threshold);
// Indices kept, most confident (mean keypoint score) first; OKS is made symmetric (min of both ways).
std::vector<int> pose_nms(const std::vector<Pose>& poses, const std::vector<float>& sigmas, float oks_threshold = 0.5f,
                          float score_threshold = 0.3f);
// Pairs (row, col) taken best first while similarity >= min_similarity.
std::vector<std::pair<int, int>> greedy_match(const std::vector<std::vector<float>>& sim, float min_similarity);

struct OneEuroParams {
    float min_cutoff = 1.0f;
    float beta = 10.0f;
    float d_cutoff = 1.0f;
    float score_threshold = 0.3f;
    float max_gap = 0.5f;
};

class OneEuroFilter {
public:
    explicit OneEuroFilter(const OneEuroParams& p = OneEuroParams()) : p_(p) {}
    // Smooth one person's keypoints in place (x, y); t in seconds, scale = person size in pixels.
    void apply(std::vector<Keypoint>& kps, double t, double scale);

private:
    OneEuroParams p_;
    bool init_ = false;
    std::vector<double> x_, y_, dx_, dy_, t_seen_;  // t_seen NaN = never seen
};

class Tracker {
public:
    float min_similarity = 0.3f;
    int max_age = 10;
    bool use_oks = true;
    float score_threshold = 0.3f;
    std::vector<float> sigmas;

    // Assigns poses[i].track_id; an id already set (>= 0) is kept when that track is alive.
    void update(std::vector<Pose>& poses);
    void reset();
    bool alive(int id) const { return tracks_.count(id) != 0; }

private:
    struct Track {
        Pose pose;
        int last_frame = 0;
    };
    std::map<int, Track> tracks_;
    int next_id_ = 0;
    int frame_ = -1;
};

struct TrackerParams {
    int det_every = 5;
    bool smooth = true;
    float fps = 30.f;
    float keypoint_threshold = 0.3f;
    float box_expand = 1.2f;
    float max_box_change = 1.1f;
    float min_pose_score = 0.15f;
    int min_keypoints = 3;
    float pose_nms_threshold = 0.5f;
};

// Video pipeline of pose_tracker.py: skip-frame detection with boxes carried from the last poses,
// pose, pose NMS, track ids, One-Euro smoothing.
class PoseTracker {
public:
    TrackerParams params;

    void reset();
    // timestamp < 0: frame index / fps. Timings (ms) of each stage are added to `stage_ms`.
    Status process(const Detector& det, const PoseEstimator& pose, const ImageView& img, double timestamp,
                   std::vector<Pose>& out, bool& detected, double stage_ms[3]);

private:
    Tracker tracker_;
    std::map<int, OneEuroFilter> filters_;
    std::vector<Pose> last_;
    int last_w_ = 0, last_h_ = 0;
    int frame_index_ = -1;
    int since_detection_ = -1;
    bool carried_boxes(int w, int h, std::vector<Box>& boxes, std::vector<int>& ids) const;
};

}  // namespace edgepose
