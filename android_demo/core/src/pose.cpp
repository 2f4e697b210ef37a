#include "edgepose/pose.h"

#include <cmath>

namespace edgepose {

float Pose::mean_score() const {
    if (keypoints.empty()) return 0.f;
    float s = 0.f;
    for (const auto& k : keypoints) s += k.score;
    return s / static_cast<float>(keypoints.size());
}

void box_to_center_scale(const Box& box, int in_w, int in_h, double center[2], double scale[2]) {
    const double x1 = box.x1, y1 = box.y1, x2 = box.x2, y2 = box.y2;
    center[0] = (x1 + x2) * 0.5;
    center[1] = (y1 + y2) * 0.5;
    double w = (x2 - x1) * static_cast<double>(kBboxPadding), h = (y2 - y1) * static_cast<double>(kBboxPadding);
    const double aspect = static_cast<double>(in_w) / in_h;
    if (w > h * aspect) h = w / aspect;
    else w = h * aspect;
    scale[0] = w;
    scale[1] = h;
}

// Solve the 3-point affine exactly (double), as cv2.getAffineTransform does from float32 points.
static void affine_from_points(const float src[3][2], const float dst[3][2], double m[6]) {
    // [x y 1] rows; M^T = inv(S) * D
    double a[3][3], b[3][2];
    for (int i = 0; i < 3; i++) {
        a[i][0] = src[i][0]; a[i][1] = src[i][1]; a[i][2] = 1.0;
        b[i][0] = dst[i][0]; b[i][1] = dst[i][1];
    }
    // Gaussian elimination with partial pivoting.
    int idx[3] = {0, 1, 2};
    for (int c = 0; c < 3; c++) {
        int p = c;
        for (int r = c + 1; r < 3; r++)
            if (std::fabs(a[idx[r]][c]) > std::fabs(a[idx[p]][c])) p = r;
        std::swap(idx[c], idx[p]);
        for (int r = c + 1; r < 3; r++) {
            double f = a[idx[r]][c] / a[idx[c]][c];
            for (int k = c; k < 3; k++) a[idx[r]][k] -= f * a[idx[c]][k];
            b[idx[r]][0] -= f * b[idx[c]][0];
            b[idx[r]][1] -= f * b[idx[c]][1];
        }
    }
    double x[3][2];
    for (int c = 2; c >= 0; c--)
        for (int j = 0; j < 2; j++) {
            double v = b[idx[c]][j];
            for (int k = c + 1; k < 3; k++) v -= a[idx[c]][k] * x[k][j];
            x[c][j] = v / a[idx[c]][c];
        }
    m[0] = x[0][0]; m[1] = x[1][0]; m[2] = x[2][0];
    m[3] = x[0][1]; m[4] = x[1][1]; m[5] = x[2][1];
}

void warp_matrix(const double center[2], const double scale[2], int in_w, int in_h, double m[6]) {
    float src[3][2], dst[3][2];
    src[0][0] = static_cast<float>(center[0]);
    src[0][1] = static_cast<float>(center[1]);
    src[1][0] = static_cast<float>(center[0] + 0.0);
    src[1][1] = static_cast<float>(center[1] + scale[0] * -0.5);
    float d0 = src[0][0] - src[1][0], d1 = src[0][1] - src[1][1];
    src[2][0] = src[1][0] - d1;
    src[2][1] = src[1][1] + d0;
    dst[0][0] = in_w * 0.5f;
    dst[0][1] = in_h * 0.5f;
    dst[1][0] = dst[0][0] + 0.f;
    dst[1][1] = dst[0][1] + in_w * -0.5f;
    float e0 = dst[0][0] - dst[1][0], e1 = dst[0][1] - dst[1][1];
    dst[2][0] = dst[1][0] - e1;
    dst[2][1] = dst[1][1] + e0;
    affine_from_points(src, dst, m);
}

void invert_affine(const double m[6], double inv[6]) {
    double d = m[0] * m[4] - m[1] * m[3];
    d = d != 0.0 ? 1.0 / d : 0.0;
    const double a11 = m[4] * d, a22 = m[0] * d, a12 = -m[1] * d, a21 = -m[3] * d;
    inv[0] = a11; inv[1] = a12; inv[2] = -a11 * m[2] - a12 * m[5];
    inv[3] = a21; inv[4] = a22; inv[5] = -a21 * m[2] - a22 * m[5];
}

void decode_simcc(const float* simcc_x, int wx, const float* simcc_y, int wy, int k, float split_ratio,
                  std::vector<Keypoint>& out) {
    out.assign(k, Keypoint());
    for (int j = 0; j < k; j++) {
        const float* px = simcc_x + static_cast<size_t>(j) * wx;
        const float* py = simcc_y + static_cast<size_t>(j) * wy;
        int bx = 0, by = 0;
        for (int i = 1; i < wx; i++)
            if (px[i] > px[bx]) bx = i;
        for (int i = 1; i < wy; i++)
            if (py[i] > py[by]) by = i;
        float score = std::min(px[bx], py[by]);
        float fx = static_cast<float>(bx), fy = static_cast<float>(by);
        if (score <= 0.f) fx = fy = -1.f;
        out[j].x = fx / split_ratio;
        out[j].y = fy / split_ratio;
        out[j].score = score;
    }
}

Status PoseEstimator::load(const std::string& model_path, const RunOptions& options) {
    Status st = model_.load(model_path, "pose", options);
    if (!st.ok()) return st;
    const ModelMeta& m = model_.meta();
    for (const char* role : {"simcc_x", "simcc_y"})
        if (!m.output_blobs.count(role))
            return Status::Error(ERR_BAD_MODEL, m.json_path + ": output_blobs lacks the '" + role +
                                                    "' role (a SimCC pose model needs simcc_x and simcc_y)");
    split_ratio_ = m.simcc_split_ratio > 0 ? m.simcc_split_ratio : kDefaultSimccSplitRatio;
    return Status::Ok();
}

Status PoseEstimator::estimate(const ImageView& img, const std::vector<Box>& boxes, std::vector<Pose>& poses) const {
    poses.clear();
    if (!model_.loaded()) return Status::Error(ERR_BAD_ARGUMENT, "pose model not loaded");
    Status st = check_image(img);
    if (!st.ok()) return st;
    const ModelMeta& m = model_.meta();
    const int in_w = m.input_width, in_h = m.input_height;
    Image crop;
    for (const Box& raw : boxes) {
        if (!(std::isfinite(raw.x1) && std::isfinite(raw.y1) && std::isfinite(raw.x2) && std::isfinite(raw.y2)))
            return Status::Error(ERR_BAD_ARGUMENT, "a box is not finite");
        Box b = raw;
        if (b.x1 > b.x2) std::swap(b.x1, b.x2);
        if (b.y1 > b.y2) std::swap(b.y1, b.y2);
        Pose pose;
        pose.box = b;
        double c[2], s[2];
        box_to_center_scale(b, in_w, in_h, c, s);
        const bool runs = (b.x2 - b.x1) >= kMinBoxSize && (b.y2 - b.y1) >= kMinBoxSize;
        if (!runs) {
            int k = m.num_keypoints();
            pose.keypoints.assign(k, Keypoint{static_cast<float>(c[0]), static_cast<float>(c[1]), 0.f});
            poses.push_back(pose);
            continue;
        }
        double fwd[6], inv[6];
        warp_matrix(c, s, in_w, in_h, fwd);
        invert_affine(fwd, inv);
        if (warp_ == WarpMethod::Exact) warp_affine_exact(img, crop, in_w, in_h, inv, kWarpBorderValue);
        else warp_affine_ncnn(img, crop, in_w, in_h, inv, kWarpBorderValue);

        std::map<std::string, ncnn::Mat> out;
        st = model_.run(model_.input_from_bgr(crop.view()), {"simcc_x", "simcc_y"}, out);
        if (!st.ok()) return st;
        const ncnn::Mat& sx = out["simcc_x"];
        const ncnn::Mat& sy = out["simcc_y"];
        if (sx.dims != 2 || sy.dims != 2 || sx.h != sy.h)
            return Status::Error(ERR_INFERENCE, m.json_path + ": simcc outputs are not (K, W) pairs");
        std::vector<Keypoint> kps;
        decode_simcc(static_cast<const float*>(sx.data), sx.w, static_cast<const float*>(sy.data), sy.w, sx.h,
                     split_ratio_, kps);
        // Model-input pixels -> image pixels (inverse of the warp; preprocess.input_to_image).
        for (auto& kp : kps) {
            kp.x = static_cast<float>(kp.x / static_cast<double>(in_w) * s[0] + c[0] - s[0] * 0.5);
            kp.y = static_cast<float>(kp.y / static_cast<double>(in_h) * s[1] + c[1] - s[1] * 0.5);
        }
        pose.keypoints = kps;
        poses.push_back(pose);
    }
    return Status::Ok();
}

}  // namespace edgepose
