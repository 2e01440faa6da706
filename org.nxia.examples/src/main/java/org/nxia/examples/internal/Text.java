package org.nxia.examples.internal;

import java.lang.foreign.MemorySegment;

/**
 * What the {@code text} host service offers a guest through Gemini: each public method here is a
 * callable method of the service (Gemini finds them on the interfaces the service is registered
 * under). {@code ./nxia exec -- nxia-call text upper hello} calls it from a System VM process.
 */
public interface Text {

    /** The string with its ASCII letters upper-cased (as the {@code upper} host function does). */
    String upper(String s);

    /**
     * The SHA-256 of the bytes, in hex: a large argument comes by reference and is read in place
     * ({@code nxia-call text sha256 @FILE}), so a guest can check that a file crossed intact.
     */
    String sha256(MemorySegment data);
}
