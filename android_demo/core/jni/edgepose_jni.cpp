// JNI binding of the core for org.edgepose.core.NativeCore (the app and the host Java harness).
// Errors become org.edgepose.core.EdgeposeException(code, message); nothing else is thrown.
#include <jni.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "edgepose/draw.h"
#include "edgepose/engine.h"

using namespace edgepose;

namespace {

struct Handle {
    Engine engine;
    std::mutex mutex;  // one frame at a time per engine (the camera thread vs. settings changes)
};

void throw_edgepose(JNIEnv* env, int code, const std::string& message) {
    if (env->ExceptionCheck()) return;
    jclass cls = env->FindClass("org/edgepose/core/EdgeposeException");
    if (!cls) return;  // NoClassDefFoundError already pending
    jmethodID ctor = env->GetMethodID(cls, "<init>", "(ILjava/lang/String;)V");
    jstring msg = env->NewStringUTF(message.c_str());
    jobject ex = env->NewObject(cls, ctor, static_cast<jint>(code), msg);
    env->Throw(static_cast<jthrowable>(ex));
}

void throw_status(JNIEnv* env, const Status& st) { throw_edgepose(env, st.code, st.message); }

std::string to_string(JNIEnv* env, jstring s) {
    if (!s) return std::string();
    const char* c = env->GetStringUTFChars(s, nullptr);
    std::string out = c ? c : "";
    if (c) env->ReleaseStringUTFChars(s, c);
    return out;
}

Handle* get(JNIEnv* env, jlong h) {
    if (h == 0) throw_edgepose(env, ERR_BAD_ARGUMENT, "NativeCore is closed");
    return reinterpret_cast<Handle*>(h);
}

// Pixels from Java: format 0 = BGR (3 bytes), 1 = RGBA (4 bytes), rows packed.
bool to_bgr(JNIEnv* env, jbyteArray pixels, jint width, jint height, jint format, Image& img) {
    if (!pixels) { throw_edgepose(env, ERR_BAD_IMAGE, "image has no pixels (null array)"); return false; }
    if (width <= 0 || height <= 0) {
        throw_edgepose(env, ERR_BAD_IMAGE, "image is empty (" + std::to_string(width) + "x" + std::to_string(height) + ")");
        return false;
    }
    if (format != 0 && format != 1) { throw_edgepose(env, ERR_BAD_ARGUMENT, "pixel format must be 0 (BGR) or 1 (RGBA)"); return false; }
    const int64_t channels = format == 0 ? 3 : 4;
    const int64_t need = static_cast<int64_t>(width) * height * channels;
    const jsize have = env->GetArrayLength(pixels);
    if (width > 16384 || height > 16384 || have != need) {
        throw_edgepose(env, ERR_BAD_IMAGE, "pixel array holds " + std::to_string(have) + " bytes; a " + std::to_string(width) +
                                                "x" + std::to_string(height) + (format == 0 ? " BGR" : " RGBA") + " image needs " +
                                                std::to_string(need));
        return false;
    }
    jbyte* data = env->GetByteArrayElements(pixels, nullptr);
    if (!data) return false;
    if (format == 0) {
        img.width = width;
        img.height = height;
        img.pixels.assign(reinterpret_cast<uint8_t*>(data), reinterpret_cast<uint8_t*>(data) + need);
    } else {
        rgba_to_bgr(reinterpret_cast<uint8_t*>(data), width, height, width * 4, img);
    }
    env->ReleaseByteArrayElements(pixels, data, JNI_ABORT);
    return true;
}

jobject make_result(JNIEnv* env, const std::vector<Pose>& poses, int k, const Timings& t, bool detected) {
    const int n = static_cast<int>(poses.size());
    std::vector<float> boxes(n * 5), kps(static_cast<size_t>(n) * k * 3);
    std::vector<jint> ids(n);
    for (int i = 0; i < n; i++) {
        const Pose& p = poses[i];
        boxes[i * 5] = p.box.x1; boxes[i * 5 + 1] = p.box.y1; boxes[i * 5 + 2] = p.box.x2; boxes[i * 5 + 3] = p.box.y2;
        boxes[i * 5 + 4] = p.box.score;
        ids[i] = p.track_id;
        for (int j = 0; j < k && j < static_cast<int>(p.keypoints.size()); j++) {
            size_t o = (static_cast<size_t>(i) * k + j) * 3;
            kps[o] = p.keypoints[j].x; kps[o + 1] = p.keypoints[j].y; kps[o + 2] = p.keypoints[j].score;
        }
    }
    jfloatArray jb = env->NewFloatArray(n * 5);
    jfloatArray jk = env->NewFloatArray(static_cast<jsize>(kps.size()));
    jintArray ji = env->NewIntArray(n);
    jdoubleArray jt = env->NewDoubleArray(4);
    if (!jb || !jk || !ji || !jt) return nullptr;
    env->SetFloatArrayRegion(jb, 0, n * 5, boxes.data());
    env->SetFloatArrayRegion(jk, 0, static_cast<jsize>(kps.size()), kps.data());
    env->SetIntArrayRegion(ji, 0, n, ids.data());
    const double tm[4] = {t.detect_ms, t.pose_ms, t.post_ms, t.total_ms};
    env->SetDoubleArrayRegion(jt, 0, 4, tm);
    jclass cls = env->FindClass("org/edgepose/core/PoseResult");
    if (!cls) return nullptr;
    jmethodID ctor = env->GetMethodID(cls, "<init>", "(II[F[F[I[DZ)V");
    return env->NewObject(cls, ctor, static_cast<jint>(n), static_cast<jint>(k), jb, jk, ji, jt,
                          static_cast<jboolean>(detected));
}

}  // namespace

extern "C" {

JNIEXPORT jlong JNICALL Java_org_edgepose_core_NativeCore_nativeCreate(JNIEnv* env, jclass, jstring det, jstring pose,
                                                                          jstring precision, jint threads, jboolean gpu) {
    EngineConfig cfg;
    cfg.det_model = to_string(env, det);
    cfg.pose_model = to_string(env, pose);
    cfg.options.precision = to_string(env, precision);
    cfg.options.threads = threads;
    cfg.options.use_gpu = gpu == JNI_TRUE;
    if (cfg.det_model.empty() || cfg.pose_model.empty()) {
        throw_edgepose(env, ERR_BAD_ARGUMENT, "both a detector and a pose model path are needed");
        return 0;
    }
    std::unique_ptr<Handle> h(new Handle());
    Status st = h->engine.load(cfg);
    if (!st.ok()) {
        throw_status(env, st);
        return 0;
    }
    return reinterpret_cast<jlong>(h.release());
}

JNIEXPORT void JNICALL Java_org_edgepose_core_NativeCore_nativeDestroy(JNIEnv*, jclass, jlong h) {
    delete reinterpret_cast<Handle*>(h);
}

JNIEXPORT jobject JNICALL Java_org_edgepose_core_NativeCore_nativeProcess(JNIEnv* env, jclass, jlong handle,
                                                                            jbyteArray pixels, jint width, jint height,
                                                                            jint format, jboolean video, jdouble timestamp) {
    Handle* h = get(env, handle);
    if (!h) return nullptr;
    Image img;
    if (!to_bgr(env, pixels, width, height, format, img)) return nullptr;
    std::lock_guard<std::mutex> lock(h->mutex);
    std::vector<Pose> poses;
    Timings t;
    bool detected = true;
    Status st = video ? h->engine.process_frame(img.view(), timestamp, poses, t, detected)
                      : h->engine.process_image(img.view(), poses, t);
    if (!st.ok()) {
        throw_status(env, st);
        return nullptr;
    }
    return make_result(env, poses, h->engine.pose().num_keypoints(), t, detected);
}

JNIEXPORT void JNICALL Java_org_edgepose_core_NativeCore_nativeResetTracking(JNIEnv* env, jclass, jlong handle) {
    Handle* h = get(env, handle);
    if (!h) return;
    std::lock_guard<std::mutex> lock(h->mutex);
    h->engine.reset_tracking();
}

// Draws the result onto an RGBA buffer in place (the app's overlay bitmap).
JNIEXPORT void JNICALL Java_org_edgepose_core_NativeCore_nativeDrawRgba(JNIEnv* env, jclass, jlong handle, jbyteArray rgba,
                                                                          jint width, jint height, jfloatArray boxes,
                                                                          jfloatArray keypoints, jintArray ids, jint n,
                                                                          jint k, jfloat threshold) {
    Handle* h = get(env, handle);
    if (!h) return;
    if (!rgba || width <= 0 || height <= 0 || env->GetArrayLength(rgba) != static_cast<jsize>(width) * height * 4) {
        throw_edgepose(env, ERR_BAD_IMAGE, "overlay buffer does not hold width*height*4 bytes");
        return;
    }
    if (n < 0 || k < 0 || env->GetArrayLength(boxes) < n * 5 || env->GetArrayLength(keypoints) < n * k * 3 ||
        env->GetArrayLength(ids) < n) {
        throw_edgepose(env, ERR_BAD_ARGUMENT, "result arrays are shorter than n persons of k keypoints");
        return;
    }
    std::vector<Pose> poses(n);
    std::vector<float> b(n * 5), kp(static_cast<size_t>(n) * k * 3);
    std::vector<jint> id(n);
    env->GetFloatArrayRegion(boxes, 0, n * 5, b.data());
    env->GetFloatArrayRegion(keypoints, 0, n * k * 3, kp.data());
    env->GetIntArrayRegion(ids, 0, n, id.data());
    for (int i = 0; i < n; i++) {
        poses[i].box = Box{b[i * 5], b[i * 5 + 1], b[i * 5 + 2], b[i * 5 + 3], b[i * 5 + 4]};
        poses[i].track_id = id[i];
        poses[i].keypoints.resize(k);
        for (int j = 0; j < k; j++) {
            size_t o = (static_cast<size_t>(i) * k + j) * 3;
            poses[i].keypoints[j] = Keypoint{kp[o], kp[o + 1], kp[o + 2]};
        }
    }
    jbyte* px = env->GetByteArrayElements(rgba, nullptr);
    if (!px) return;
    draw_poses(reinterpret_cast<uint8_t*>(px), width, height, width * 4, 4, poses, h->engine.pose().meta(), threshold);
    env->ReleaseByteArrayElements(rgba, px, 0);
}

}  // extern "C"
