// Skeleton overlay on an 8-bit BGR or RGBA buffer (ncnn's pixel drawing), colours from the metadata.
#pragma once

#include <vector>

#include "edgepose/model_meta.h"
#include "edgepose/pose.h"

namespace edgepose {

// channels: 3 (BGR) or 4 (RGBA). Keypoints below `threshold` are not drawn.
void draw_poses(uint8_t* pixels, int width, int height, int stride, int channels, const std::vector<Pose>& poses,
                const ModelMeta& pose_meta, float threshold = 0.3f, bool draw_boxes = true);

}  // namespace edgepose
