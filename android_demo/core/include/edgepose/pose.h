// Top-down SimCC pose (RTMPose / DWPose / RTMW), the rules of edge_runtime/pose.py,
// preprocess.py and simcc.py.
#pragma once

#include <vector>

#include "edgepose/detector.h"
#include "edgepose/image.h"
#include "edgepose/ncnn_model.h"

namespace edgepose {

// Mirrored from edge_runtime/constants.py.
constexpr float kBboxPadding = 1.25f;
constexpr float kDefaultSimccSplitRatio = 2.0f;
constexpr uint8_t kWarpBorderValue = 0;
constexpr float kMinBoxSize = 1.0f;

struct Keypoint {
    float x = 0, y = 0, score = 0;
};

struct Pose {
    Box box;                          // the box the pose was estimated in (score = detector score)
    std::vector<Keypoint> keypoints;
    int track_id = -1;
    float mean_score() const;
};

// mmpose GetBBoxCenterScale + aspect fix (double, as numpy float64).
void box_to_center_scale(const Box& box, int in_w, int in_h, double center[2], double scale[2]);
// The forward 2x3 matrix (image -> model input), built from float32 points like mmpose's get_warp_matrix.
void warp_matrix(const double center[2], const double scale[2], int in_w, int in_h, double m[6]);
void invert_affine(const double m[6], double inv[6]);

// SimCC decode of one person: argmax (first maximum), score = min of both maxima, bins / ratio;
// score <= 0 marks the keypoint invalid (-1 bins), as mmpose.
void decode_simcc(const float* simcc_x, int wx, const float* simcc_y, int wy, int k, float split_ratio,
                  std::vector<Keypoint>& out);

enum class WarpMethod { Exact, Ncnn };

class PoseEstimator {
public:
    Status load(const std::string& model_path, const RunOptions& options);
    // One pose per box, in the boxes' order.
    Status estimate(const ImageView& img, const std::vector<Box>& boxes, std::vector<Pose>& poses) const;
    const ModelMeta& meta() const { return model_.meta(); }
    const NcnnModel& model() const { return model_; }
    bool loaded() const { return model_.loaded(); }
    int num_keypoints() const { return model_.meta().num_keypoints(); }
    void set_warp_method(WarpMethod m) { warp_ = m; }

private:
    NcnnModel model_;
    float split_ratio_ = kDefaultSimccSplitRatio;
    WarpMethod warp_ = WarpMethod::Exact;
};

}  // namespace edgepose
