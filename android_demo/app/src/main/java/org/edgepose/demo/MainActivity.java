package org.edgepose.demo;

import android.Manifest;
import android.content.pm.PackageManager;
import android.graphics.Bitmap;
import android.os.Bundle;
import android.os.SystemClock;
import android.view.View;
import android.widget.AdapterView;
import android.widget.ArrayAdapter;
import android.widget.Button;
import android.widget.Spinner;
import android.widget.TextView;

import androidx.appcompat.app.AppCompatActivity;
import androidx.appcompat.widget.SwitchCompat;
import androidx.camera.core.CameraSelector;
import androidx.camera.core.ImageAnalysis;
import androidx.camera.core.ImageProxy;
import androidx.camera.core.Preview;
import androidx.camera.lifecycle.ProcessCameraProvider;
import androidx.camera.view.PreviewView;
import androidx.core.app.ActivityCompat;
import androidx.core.content.ContextCompat;

import com.google.common.util.concurrent.ListenableFuture;

import java.io.File;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

import org.edgepose.core.EdgeposeException;
import org.edgepose.core.NativeCore;
import org.edgepose.core.PoseResult;

/** Camera preview + whole-body pose from the C++ core, with model/precision/GPU/camera switches. */
public final class MainActivity extends AppCompatActivity {
    private static final String[] PRECISIONS = {"fp16", "int8", "fp32"};
    private static final int CAMERA_REQUEST = 1;

    private final ExecutorService worker = Executors.newSingleThreadExecutor();
    private PreviewView preview;
    private OverlayView overlay;
    private TextView stats;
    private Spinner modelSpinner, precisionSpinner;
    private SwitchCompat gpuSwitch;
    private List<String> poseModels;
    private volatile NativeCore core;          // replaced on the worker thread when a switch changes
    private boolean frontCamera = false;
    private byte[] rgba, overlayPixels;
    private Bitmap overlayBitmap;
    private double fps = 0;
    private long lastFrameMs = 0;

    @Override
    protected void onCreate(Bundle state) {
        super.onCreate(state);
        setContentView(R.layout.activity_main);
        preview = findViewById(R.id.preview);
        overlay = findViewById(R.id.overlay);
        stats = findViewById(R.id.stats);
        modelSpinner = findViewById(R.id.model);
        precisionSpinner = findViewById(R.id.precision);
        gpuSwitch = findViewById(R.id.gpu);
        Button flip = findViewById(R.id.flip);

        try {
            poseModels = ModelAssets.poseModels(this);
        } catch (java.io.IOException e) {
            poseModels = java.util.Collections.emptyList();
        }
        modelSpinner.setAdapter(new ArrayAdapter<>(this, android.R.layout.simple_spinner_dropdown_item, poseModels));
        precisionSpinner.setAdapter(new ArrayAdapter<>(this, android.R.layout.simple_spinner_dropdown_item, PRECISIONS));
        AdapterView.OnItemSelectedListener reload = new AdapterView.OnItemSelectedListener() {
            @Override
            public void onItemSelected(AdapterView<?> p, View v, int pos, long id) {
                loadModels();
            }

            @Override
            public void onNothingSelected(AdapterView<?> p) {}
        };
        modelSpinner.setOnItemSelectedListener(reload);
        precisionSpinner.setOnItemSelectedListener(reload);
        gpuSwitch.setOnCheckedChangeListener((b, checked) -> loadModels());
        flip.setOnClickListener(v -> {
            frontCamera = !frontCamera;
            startCamera();
        });

        if (poseModels.isEmpty()) {
            stats.setText("No pose model in assets/models/pose-*/ (see android_demo/README.md)");
        }
        if (ContextCompat.checkSelfPermission(this, Manifest.permission.CAMERA) == PackageManager.PERMISSION_GRANTED) {
            startCamera();
        } else {
            ActivityCompat.requestPermissions(this, new String[]{Manifest.permission.CAMERA}, CAMERA_REQUEST);
        }
    }

    @Override
    public void onRequestPermissionsResult(int code, String[] perms, int[] results) {
        super.onRequestPermissionsResult(code, perms, results);
        if (code == CAMERA_REQUEST && results.length > 0 && results[0] == PackageManager.PERMISSION_GRANTED) {
            startCamera();
        } else {
            stats.setText(R.string.no_camera);
        }
    }

    /** (Re)creates the native core off the UI thread with the current switches. */
    private void loadModels() {
        if (poseModels.isEmpty()) return;
        final String pose = poseModels.get(Math.max(0, modelSpinner.getSelectedItemPosition()));
        final String precision = PRECISIONS[Math.max(0, precisionSpinner.getSelectedItemPosition())];
        final boolean gpu = gpuSwitch.isChecked();
        worker.execute(() -> {
            NativeCore old = core;
            core = null;
            if (old != null) old.close();
            try {
                File det = ModelAssets.extract(this, ModelAssets.DETECTOR);
                File poseDir = ModelAssets.extract(this, pose);
                core = new NativeCore(det.getPath(), poseDir.getPath(), precision, 0, gpu);
                showText(pose + " " + precision + (gpu ? " GPU" : " CPU") + " loaded");
            } catch (EdgeposeException e) {
                showText("Model error (" + e.code() + "): " + e.getMessage());
            } catch (java.io.IOException e) {
                showText("Missing assets: " + e.getMessage());
            }
        });
    }

    private void startCamera() {
        ListenableFuture<ProcessCameraProvider> future = ProcessCameraProvider.getInstance(this);
        future.addListener(() -> {
            try {
                ProcessCameraProvider provider = future.get();
                Preview p = new Preview.Builder().build();
                p.setSurfaceProvider(preview.getSurfaceProvider());
                ImageAnalysis analysis = new ImageAnalysis.Builder()
                        .setBackpressureStrategy(ImageAnalysis.STRATEGY_KEEP_ONLY_LATEST)
                        .setOutputImageFormat(ImageAnalysis.OUTPUT_IMAGE_FORMAT_RGBA_8888)
                        .setOutputImageRotationEnabled(true)
                        .build();
                analysis.setAnalyzer(worker, this::analyze);
                CameraSelector selector = frontCamera ? CameraSelector.DEFAULT_FRONT_CAMERA : CameraSelector.DEFAULT_BACK_CAMERA;
                provider.unbindAll();
                provider.bindToLifecycle(this, selector, p, analysis);
                NativeCore c = core;
                if (c != null) c.resetTracking();
            } catch (Exception e) {
                showText("Camera error: " + e);
            }
        }, ContextCompat.getMainExecutor(this));
    }

    /** Runs on the worker thread: one camera frame through the core, then the overlay. */
    private void analyze(ImageProxy image) {
        try {
            NativeCore c = core;
            if (c == null) return;
            int w = image.getWidth(), h = image.getHeight();
            ImageProxy.PlaneProxy plane = image.getPlanes()[0];
            ByteBuffer buf = plane.getBuffer().order(ByteOrder.nativeOrder());
            int rowStride = plane.getRowStride();
            if (rgba == null || rgba.length != w * h * 4) {
                rgba = new byte[w * h * 4];
                overlayPixels = new byte[w * h * 4];
                overlayBitmap = Bitmap.createBitmap(w, h, Bitmap.Config.ARGB_8888);
            }
            for (int y = 0; y < h; y++) {
                buf.position(y * rowStride);
                buf.get(rgba, y * w * 4, w * 4);
            }
            double t = image.getImageInfo().getTimestamp() / 1e9;
            PoseResult r = c.processFrame(rgba, w, h, NativeCore.FORMAT_RGBA, t);
            java.util.Arrays.fill(overlayPixels, (byte) 0);
            c.drawRgba(overlayPixels, w, h, r, 0.3f);
            // Bitmap.copyPixelsFromBuffer takes RGBA bytes for ARGB_8888 on little-endian devices.
            overlayBitmap.copyPixelsFromBuffer(ByteBuffer.wrap(overlayPixels));
            overlay.show(overlayBitmap, frontCamera);

            long now = SystemClock.elapsedRealtime();
            if (lastFrameMs > 0) {
                double inst = 1000.0 / Math.max(1, now - lastFrameMs);
                fps = fps == 0 ? inst : 0.9 * fps + 0.1 * inst;
            }
            lastFrameMs = now;
            showText(String.format(Locale.ROOT, "%.1f FPS  %d persons%n det %.1f ms%s%n pose %.1f ms%n post %.1f ms%n total %.1f ms",
                    fps, r.persons, r.timingsMs[0], r.detected ? "" : " (carried)", r.timingsMs[1], r.timingsMs[2],
                    r.timingsMs[3]));
        } catch (EdgeposeException e) {
            showText("Error (" + e.code() + "): " + e.getMessage());
        } finally {
            image.close();
        }
    }

    private void showText(String s) {
        runOnUiThread(() -> stats.setText(s));
    }

    @Override
    protected void onDestroy() {
        super.onDestroy();
        worker.execute(() -> {
            NativeCore c = core;
            core = null;
            if (c != null) c.close();
        });
        worker.shutdown();
    }
}
