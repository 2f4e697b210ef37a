// edgepose_native: image in, JSON out (boxes, keypoints, scores) on stdout.
//
//   edgepose_native --det DIR [--pose DIR] [--precision fp32|fp16|int8] [--threads N]
//                   [--warp exact|ncnn] [--draw OUT.ppm] [--frames N] [--device cpu|gpu|gpu:N]
//                   IMAGE [IMAGE...]
//
// --device gpu runs both models on ncnn's Vulkan backend (builds with NCNN_VULKAN) and prints the
// device used on stderr.
//
// Without --pose only the detector runs (boxes, no keypoints). One JSON object per image and line. --frames N runs each image N times as video frames
// (tracking + smoothing) and prints the last frame. Errors: one JSON line {"error": {...}} on
// stdout, the message on stderr, and exit code 2 (usage: 64).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "edgepose/draw.h"
#include "edgepose/engine.h"
#include "edgepose/image_io.h"

using namespace edgepose;

static int usage() {
    std::fprintf(stderr,
                 "usage: edgepose_native --det MODEL [--pose MODEL] [--precision fp32|fp16|int8] [--threads N]\n"
                 "                       [--warp exact|ncnn] [--draw OUT.ppm] [--frames N] [--device cpu|gpu|gpu:N]\n"
                 "                       IMAGE [IMAGE...]\n");
    return 64;
}

static int fail(const Status& st) {
    std::printf("%s\n", error_to_json(st).c_str());
    std::fprintf(stderr, "edgepose_native: error: %s\n", st.message.c_str());
    return 2;
}

int main(int argc, char** argv) {
    EngineConfig cfg;
    std::string warp = "exact", draw, device = "cpu";
    int frames = 0;
    std::vector<std::string> images;
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        auto value = [&](std::string& out) -> bool {
            if (i + 1 >= argc) return false;
            out = argv[++i];
            return true;
        };
        std::string v;
        if (a == "--det") { if (!value(cfg.det_model)) return usage(); }
        else if (a == "--pose") { if (!value(cfg.pose_model)) return usage(); }
        else if (a == "--precision") { if (!value(cfg.options.precision)) return usage(); }
        else if (a == "--threads") { if (!value(v)) return usage(); cfg.options.threads = std::atoi(v.c_str()); }
        else if (a == "--warp") { if (!value(warp)) return usage(); }
        else if (a == "--draw") { if (!value(draw)) return usage(); }
        else if (a == "--frames") { if (!value(v)) return usage(); frames = std::atoi(v.c_str()); }
        else if (a == "--device") { if (!value(device)) return usage(); }
        else if (a == "-h" || a == "--help") { usage(); return 0; }
        else if (!a.empty() && a[0] == '-') return usage();
        else images.push_back(a);
    }
    if (cfg.det_model.empty() || images.empty()) return usage();
    if (cfg.pose_model.empty() && (frames > 0 || !draw.empty()))
        return fail(Status::Error(ERR_BAD_ARGUMENT, "--frames and --draw need a --pose model"));
    if (warp != "exact" && warp != "ncnn") return fail(Status::Error(ERR_BAD_ARGUMENT, "--warp must be exact or ncnn"));

    if (device == "gpu" || device.compare(0, 4, "gpu:") == 0) {
        cfg.options.use_gpu = true;
        if (device.size() > 4) {
            const std::string n = device.substr(4);
            if (n.empty() || n.find_first_not_of("0123456789") != std::string::npos)
                return fail(Status::Error(ERR_BAD_ARGUMENT, "--device must be cpu, gpu or gpu:N, got '" + device + "'"));
            cfg.options.gpu_device = std::atoi(n.c_str());
        }
    } else if (device != "cpu") {
        return fail(Status::Error(ERR_BAD_ARGUMENT, "--device must be cpu, gpu or gpu:N, got '" + device + "'"));
    }

    Engine engine;
    Status st = engine.load(cfg);
    if (!st.ok()) return fail(st);
    engine.pose().set_warp_method(warp == "ncnn" ? WarpMethod::Ncnn : WarpMethod::Exact);
    if (cfg.options.use_gpu && !cfg.pose_model.empty())
        std::fprintf(stderr, "edgepose_native: running on Vulkan device %s\n",
                     engine.pose().model().gpu_description().c_str());

    int rc = 0;
    for (const std::string& path : images) {
        Image img;
        st = read_image(path, img);
        if (!st.ok()) { rc = fail(st); continue; }
        std::vector<Pose> poses;
        Timings t;
        if (frames > 0) {
            engine.reset_tracking();
            bool detected = false;
            for (int f = 0; f < frames && st.ok(); f++) st = engine.process_frame(img.view(), -1.0, poses, t, detected);
        } else {
            st = engine.process_image(img.view(), poses, t);
        }
        if (!st.ok()) { rc = fail(st); continue; }
        std::printf("%s\n", poses_to_json(poses, img.width, img.height, t).c_str());
        if (!draw.empty()) {
            draw_poses(img.pixels.data(), img.width, img.height, img.width * 3, 3, poses, engine.pose().meta());
            st = write_ppm(draw, img);
            if (!st.ok()) rc = fail(st);
        }
    }
    std::fflush(stdout);
    return rc;
}
