package org.edgepose.core;

/** An error reported by the native core: a bad model folder, a missing file, a bad image... */
public class EdgeposeException extends RuntimeException {
    public static final int NOT_FOUND = 1;
    public static final int BAD_MODEL = 2;
    public static final int BAD_IMAGE = 3;
    public static final int BAD_ARGUMENT = 4;
    public static final int INFERENCE = 5;

    private final int code;

    public EdgeposeException(int code, String message) {
        super(message);
        this.code = code;
    }

    /** One of the constants above (the core's StatusCode). */
    public int code() {
        return code;
    }
}
