package org.edgepose.harness;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.Locale;

import org.edgepose.core.EdgeposeException;
import org.edgepose.core.NativeCore;
import org.edgepose.core.PoseResult;

/**
 * Host harness: calls the JNI core exactly as the app does (NativeCore), with no Android.
 *
 *   java -Dedgepose.jni.library=/abs/libedgepose_jni.so -cp CLASSES org.edgepose.harness.Harness
 *        run DET POSE PRECISION IMAGE.ppm...      -> one JSON line per image (as edgepose_native)
 *        errors DET POSE                           -> one line per error case: "case code message"
 *
 * Images are binary PPM (decoded once by OpenCV on the Python side, so both see the same pixels);
 * they are handed to the core as RGBA, the layout the app gets from a Bitmap.
 */
public final class Harness {
    private Harness() {}

    static final class Ppm {
        int width, height;
        byte[] rgba;
    }

    static Ppm readPpm(String path) throws IOException {
        byte[] all = Files.readAllBytes(Paths.get(path));
        int[] pos = {0};
        String magic = token(all, pos), w = token(all, pos), h = token(all, pos), max = token(all, pos);
        if (!"P6".equals(magic) || !"255".equals(max)) throw new IOException(path + ": not an 8-bit binary PPM");
        Ppm p = new Ppm();
        p.width = Integer.parseInt(w);
        p.height = Integer.parseInt(h);
        int n = p.width * p.height;
        if (all.length - pos[0] < n * 3) throw new IOException(path + ": truncated PPM");
        p.rgba = new byte[n * 4];
        for (int i = 0; i < n; i++) {
            p.rgba[i * 4] = all[pos[0] + i * 3];
            p.rgba[i * 4 + 1] = all[pos[0] + i * 3 + 1];
            p.rgba[i * 4 + 2] = all[pos[0] + i * 3 + 2];
            p.rgba[i * 4 + 3] = (byte) 255;
        }
        return p;
    }

    private static String token(byte[] b, int[] pos) {
        StringBuilder sb = new StringBuilder();
        while (pos[0] < b.length) {
            char c = (char) (b[pos[0]++] & 0xff);
            if (c == '#') {
                while (pos[0] < b.length && b[pos[0]] != '\n') pos[0]++;
                continue;
            }
            if (Character.isWhitespace(c)) {
                if (sb.length() > 0) return sb.toString();
                continue;
            }
            sb.append(c);
        }
        return sb.toString();
    }

    static String toJson(PoseResult r, int width, int height) {
        StringBuilder s = new StringBuilder();
        s.append("{\"width\": ").append(width).append(", \"height\": ").append(height).append(", \"persons\": [");
        for (int i = 0; i < r.persons; i++) {
            if (i > 0) s.append(", ");
            s.append("{\"box\": [");
            for (int j = 0; j < 4; j++) s.append(j > 0 ? ", " : "").append(num(r.boxes[i * 5 + j]));
            s.append("], \"box_score\": ").append(num(r.boxes[i * 5 + 4]));
            s.append(", \"track_id\": ").append(r.trackIds[i]).append(", \"keypoints\": [");
            for (int k = 0; k < r.keypointsPerPerson; k++) {
                s.append(k > 0 ? ", " : "").append('[').append(num(r.x(i, k))).append(", ").append(num(r.y(i, k))).append(']');
            }
            s.append("], \"scores\": [");
            for (int k = 0; k < r.keypointsPerPerson; k++) s.append(k > 0 ? ", " : "").append(num(r.score(i, k)));
            s.append("]}");
        }
        s.append("], \"timings_ms\": {\"detect\": ").append(num(r.timingsMs[0])).append(", \"pose\": ")
                .append(num(r.timingsMs[1])).append(", \"post\": ").append(num(r.timingsMs[2])).append(", \"total\": ")
                .append(num(r.timingsMs[3])).append("}}");
        return s.toString();
    }

    private static String num(double v) {
        if (Double.isNaN(v) || Double.isInfinite(v)) return "null";
        return String.format(Locale.ROOT, "%.9g", v);
    }

    interface Case {
        void run() throws Exception;
    }

    private static void expect(String name, Case c) {
        try {
            c.run();
            System.out.println(name + " NO_ERROR -");
        } catch (EdgeposeException e) {
            System.out.println(name + " " + e.code() + " " + e.getMessage().replace('\n', ' '));
        } catch (Throwable t) {
            System.out.println(name + " UNEXPECTED " + t);
        }
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 3) {
            System.err.println("usage: Harness run|run-gpu DET POSE PRECISION IMAGE... | errors DET POSE");
            System.exit(64);
        }
        String det = args[1], pose = args[2];
        if (args[0].equals("run") || args[0].equals("run-gpu")) {
            // run-gpu: the app's GPU switch (Vulkan), on whatever device the host has (CI: lavapipe).
            try (NativeCore core = new NativeCore(det, pose, args[3], 1, args[0].equals("run-gpu"))) {
                for (int i = 4; i < args.length; i++) {
                    Ppm img = readPpm(args[i]);
                    PoseResult r = core.processImage(img.rgba, img.width, img.height, NativeCore.FORMAT_RGBA);
                    System.out.println(toJson(r, img.width, img.height));
                    // The app's overlay path must accept the same result.
                    core.drawRgba(img.rgba, img.width, img.height, r, 0.3f);
                }
            }
            return;
        }
        // Error cases: each must surface as an EdgeposeException with a code, never a crash.
        expect("missing_model_folder", () -> new NativeCore("/nonexistent/model", pose, "fp32", 1, false).close());
        expect("pose_as_detector", () -> new NativeCore(pose, pose, "fp32", 1, false).close());
        expect("bad_precision", () -> new NativeCore(det, pose, "fp8", 1, false).close());
        expect("int8_missing", () -> new NativeCore(det, pose, "int8", 1, false).close());
        expect("gpu_without_vulkan", () -> new NativeCore(det, pose, "fp32", 1, true).close());
        if (args.length > 3) {
            expect("bad_model_folder", () -> new NativeCore(args[3], pose, "fp32", 1, false).close());
        }
        try (NativeCore core = new NativeCore(det, pose, "fp32", 1, false)) {
            expect("empty_image", () -> core.processImage(new byte[0], 0, 0, NativeCore.FORMAT_RGBA));
            expect("null_pixels", () -> core.processImage(null, 4, 4, NativeCore.FORMAT_BGR));
            expect("short_buffer", () -> core.processImage(new byte[10], 7, 5, NativeCore.FORMAT_BGR));
            expect("bad_format", () -> core.processImage(new byte[48], 4, 4, 7));
            // Odd sizes are valid images: they must run (NO_ERROR), whatever they contain.
            expect("odd_size_1x1", () -> core.processImage(new byte[3], 1, 1, NativeCore.FORMAT_BGR));
            expect("odd_size_3x517", () -> core.processImage(new byte[3 * 517 * 4], 3, 517, NativeCore.FORMAT_RGBA));
            expect("odd_size_frame_1001x7", () -> core.processFrame(new byte[1001 * 7 * 3], 1001, 7, NativeCore.FORMAT_BGR, 0.0));
        }
        NativeCore closed = new NativeCore(det, pose, "fp32", 1, false);
        closed.close();
        expect("use_after_close", () -> closed.processImage(new byte[12], 2, 2, NativeCore.FORMAT_BGR));
    }
}
