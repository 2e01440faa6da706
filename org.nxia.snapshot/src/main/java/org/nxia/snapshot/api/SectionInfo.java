package org.nxia.snapshot.api;

/**
 * One entry of a snapshot's section table, as {@code snapshot info} shows it.
 *
 * @param name the section's name
 * @param kind what it holds
 * @param offset where its stored bytes begin in the file
 * @param storedLength its bytes in the file (ciphertext and tags when encrypted)
 * @param length its content's length (the plaintext)
 * @param sha256 the SHA-256 of its stored bytes, in hex
 */
public record SectionInfo(String name, Kind kind, long offset, long storedLength, long length, String sha256) {

    /** What a section holds; the ordinal is the kind's code in the file. */
    public enum Kind {
        /** Bytes the VMM gave. */
        DATA,
        /** The RAM page map (section {@code ram.map}): RAM's size and the ranges stored. */
        RAM_MAP,
        /** The stored RAM pages (section {@code ram}), in page-map order. */
        RAM_PAGES
    }
}
