package org.edgepose.core;

/**
 * The C++ core (android_demo/core) through JNI: detector + pose + pose NMS + tracking.
 * The app and the host test harness call it the same way.
 */
public final class NativeCore implements AutoCloseable {
    public static final int FORMAT_BGR = 0;
    public static final int FORMAT_RGBA = 1;

    static {
        // Host tests point at the built library; the app loads it from the APK.
        String path = System.getProperty("edgepose.jni.library");
        if (path != null && !path.isEmpty()) {
            System.load(path);
        } else {
            System.loadLibrary("edgepose_jni");
        }
    }

    private long handle;

    /**
     * @param detModel  converted detector: folder, .json or .ncnn.param
     * @param poseModel converted pose model
     * @param precision "fp32", "fp16", "int8" or "" (fp16 on ARM)
     * @param threads   ncnn threads (0 = ncnn's default)
     * @param gpu       run on the GPU through Vulkan (where the build has it)
     */
    public NativeCore(String detModel, String poseModel, String precision, int threads, boolean gpu) {
        handle = nativeCreate(detModel, poseModel, precision == null ? "" : precision, threads, gpu);
    }

    /** Still image: detector on the image, no tracking or smoothing. */
    public synchronized PoseResult processImage(byte[] pixels, int width, int height, int format) {
        return nativeProcess(checkOpen(), pixels, width, height, format, false, -1.0);
    }

    /** Camera frame: skip-frame detection, track ids, One-Euro smoothing. timestamp in seconds (< 0: 30 fps). */
    public synchronized PoseResult processFrame(byte[] pixels, int width, int height, int format, double timestampSec) {
        return nativeProcess(checkOpen(), pixels, width, height, format, true, timestampSec);
    }

    public synchronized void resetTracking() {
        nativeResetTracking(checkOpen());
    }

    /** Draws boxes, ids and skeletons onto an RGBA buffer (width*height*4 bytes) in place. */
    public synchronized void drawRgba(byte[] rgba, int width, int height, PoseResult r, float threshold) {
        nativeDrawRgba(checkOpen(), rgba, width, height, r.boxes, r.keypoints, r.trackIds, r.persons,
                r.keypointsPerPerson, threshold);
    }

    @Override
    public synchronized void close() {
        if (handle != 0) {
            nativeDestroy(handle);
            handle = 0;
        }
    }

    private long checkOpen() {
        if (handle == 0) {
            throw new EdgeposeException(EdgeposeException.BAD_ARGUMENT, "NativeCore is closed");
        }
        return handle;
    }

    private static native long nativeCreate(String det, String pose, String precision, int threads, boolean gpu);

    private static native void nativeDestroy(long handle);

    private static native PoseResult nativeProcess(long handle, byte[] pixels, int width, int height, int format,
                                                   boolean video, double timestamp);

    private static native void nativeResetTracking(long handle);

    private static native void nativeDrawRgba(long handle, byte[] rgba, int width, int height, float[] boxes,
                                              float[] keypoints, int[] ids, int n, int k, float threshold);
}
