// Detector + pose + pose NMS + tracking in one object: what the CLI, the JNI binding and the app use.
#pragma once

#include <string>
#include <vector>

#include "edgepose/detector.h"
#include "edgepose/pose.h"
#include "edgepose/tracking.h"

namespace edgepose {

struct EngineConfig {
    std::string det_model;    // folder / .json / .ncnn.param
    std::string pose_model;   // empty: detector only (process_image gives boxes without keypoints)
    RunOptions options;
    float det_score_threshold = -1.f;  // < 0: metadata / family default
    float det_nms_iou = -1.f;
};

struct Timings {
    double detect_ms = 0, pose_ms = 0, post_ms = 0, total_ms = 0;
};

class Engine {
public:
    Status load(const EngineConfig& config);
    bool loaded() const { return det_.loaded() && pose_.loaded(); }
    // Still image: detector, pose on every box, pose NMS; ids 0..N-1 in box order; no smoothing.
    Status process_image(const ImageView& img, std::vector<Pose>& poses, Timings& t);
    // Video frame: skip-frame detection, tracking, One-Euro smoothing (timestamp < 0: frame / fps).
    Status process_frame(const ImageView& img, double timestamp, std::vector<Pose>& poses, Timings& t,
                         bool& detected);
    void reset_tracking() { tracker_.reset(); }
    PoseTracker& tracker() { return tracker_; }
    Detector& detector() { return det_; }
    PoseEstimator& pose() { return pose_; }

private:
    Detector det_;
    PoseEstimator pose_;
    PoseTracker tracker_;
};

// {"width", "height", "persons": [{"box": [x1,y1,x2,y2], "box_score", "track_id", "keypoints": [[x,y],...],
//   "scores": [...]}], "timings_ms": {...}}
std::string poses_to_json(const std::vector<Pose>& poses, int width, int height, const Timings& t);
std::string error_to_json(const Status& st);

}  // namespace edgepose
