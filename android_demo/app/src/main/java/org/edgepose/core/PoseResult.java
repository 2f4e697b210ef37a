package org.edgepose.core;

/** Persons found in one image: flat arrays, as the native core fills them. */
public final class PoseResult {
    public final int persons;
    public final int keypointsPerPerson;
    /** persons x (x1, y1, x2, y2, score), image pixels. */
    public final float[] boxes;
    /** persons x keypoints x (x, y, score), image pixels. */
    public final float[] keypoints;
    public final int[] trackIds;
    /** Milliseconds: detect, pose, post (NMS/tracking/smoothing), total. */
    public final double[] timingsMs;
    /** False when the boxes were carried from the previous frame (skip-frame detection). */
    public final boolean detected;

    public PoseResult(int persons, int keypointsPerPerson, float[] boxes, float[] keypoints, int[] trackIds,
                      double[] timingsMs, boolean detected) {
        this.persons = persons;
        this.keypointsPerPerson = keypointsPerPerson;
        this.boxes = boxes;
        this.keypoints = keypoints;
        this.trackIds = trackIds;
        this.timingsMs = timingsMs;
        this.detected = detected;
    }

    public float x(int person, int k) {
        return keypoints[(person * keypointsPerPerson + k) * 3];
    }

    public float y(int person, int k) {
        return keypoints[(person * keypointsPerPerson + k) * 3 + 1];
    }

    public float score(int person, int k) {
        return keypoints[(person * keypointsPerPerson + k) * 3 + 2];
    }
}
