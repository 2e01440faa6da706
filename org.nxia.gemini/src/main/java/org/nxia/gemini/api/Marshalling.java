package org.nxia.gemini.api;

/**
 * How a call's {@code byte[]} arguments cross the boundary
 * (docs/gemini-protocol.md, "Large arguments").
 */
public enum Marshalling {
    /**
     * By reference when the argument is at least {@link GeminiSession#referenceThreshold()} bytes
     * (or would not fit a frame) and the session has a reference region with a free block big
     * enough; copied otherwise.
     */
    AUTO,
    /** Copied into the frame. */
    COPY,
    /**
     * Every {@code byte[]} argument by reference: the caller copies it into a block of the
     * session's reference region and the callee reads it in place; the call fails with
     * {@link ErrorCode#BAD_REF} if there is no region or no block fits. An empty one is copied
     * (a reference names at least one byte).
     */
    REFERENCE
}
