package org.edgepose.demo;

import android.content.Context;
import android.graphics.Bitmap;
import android.graphics.Canvas;
import android.graphics.Matrix;
import android.util.AttributeSet;
import android.view.View;

/** Shows the skeleton bitmap drawn by the core, scaled like the preview (fitCenter), mirrored for the front camera. */
public final class OverlayView extends View {
    private Bitmap bitmap;
    private boolean mirror;
    private final Matrix matrix = new Matrix();

    public OverlayView(Context context, AttributeSet attrs) {
        super(context, attrs);
    }

    void show(Bitmap b, boolean mirrored) {
        bitmap = b;
        mirror = mirrored;
        postInvalidate();
    }

    @Override
    protected void onDraw(Canvas canvas) {
        Bitmap b = bitmap;
        if (b == null) return;
        float s = Math.min(getWidth() / (float) b.getWidth(), getHeight() / (float) b.getHeight());
        float dx = (getWidth() - b.getWidth() * s) / 2f, dy = (getHeight() - b.getHeight() * s) / 2f;
        matrix.reset();
        matrix.postScale(mirror ? -s : s, s);
        matrix.postTranslate(mirror ? dx + b.getWidth() * s : dx, dy);
        canvas.drawBitmap(b, matrix, null);
    }
}
