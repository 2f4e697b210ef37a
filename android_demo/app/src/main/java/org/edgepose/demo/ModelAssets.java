package org.edgepose.demo;

import android.content.Context;
import android.content.res.AssetManager;

import java.io.File;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Converted models shipped in assets/models/: "det/" (the person detector) and one "pose-NAME/"
 * folder per pose model size (each may hold fp32, fp16 and int8 variants, as `edgepose convert`
 * and `edgepose quantize` write them). The core reads files, so folders are copied once to
 * the app's private storage.
 */
final class ModelAssets {
    static final String ROOT = "models";
    static final String DETECTOR = "det";
    static final String POSE_PREFIX = "pose-";

    private ModelAssets() {}

    /** Pose model folders in the assets, e.g. ["pose-t", "pose-m"]. */
    static List<String> poseModels(Context ctx) throws IOException {
        List<String> out = new ArrayList<>();
        String[] names = ctx.getAssets().list(ROOT);
        if (names != null) {
            Arrays.sort(names);
            for (String n : names) {
                if (n.startsWith(POSE_PREFIX)) out.add(n);
            }
        }
        return out;
    }

    /** Copies assets/models/NAME/ to private storage (when not yet there) and returns the folder. */
    static File extract(Context ctx, String name) throws IOException {
        AssetManager am = ctx.getAssets();
        String[] files = am.list(ROOT + "/" + name);
        if (files == null || files.length == 0) {
            throw new IOException("assets/" + ROOT + "/" + name + " is missing or empty: convert models with "
                    + "`edgepose convert` into android_demo/app/src/main/assets/models/ (see README)");
        }
        File dir = new File(ctx.getFilesDir(), ROOT + "/" + name);
        if (!dir.isDirectory() && !dir.mkdirs()) throw new IOException("cannot create " + dir);
        for (String f : files) {
            File dst = new File(dir, f);
            if (dst.isFile() && dst.length() > 0) continue;
            File tmp = new File(dir, f + ".tmp");
            try (InputStream in = am.open(ROOT + "/" + name + "/" + f); OutputStream out = new FileOutputStream(tmp)) {
                byte[] buf = new byte[1 << 16];
                int n;
                while ((n = in.read(buf)) > 0) out.write(buf, 0, n);
            }
            // Never leave a half-copied model that looks whole.
            if (!tmp.renameTo(dst)) throw new IOException("cannot rename " + tmp + " to " + dst);
        }
        return dir;
    }
}
