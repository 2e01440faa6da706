package org.nxia.snapshot.api;

import java.util.List;

/**
 * Where the writer looks for guest pages worth saving. Within these ranges it stores only
 * the pages that are not all zero, so any of them is correct; they differ in how much they
 * make it read.
 */
public sealed interface RamPages {

    /** Every page: the writer reads all of RAM and stores its non-zero pages. */
    static RamPages all() {
        return new All();
    }

    /** Only these ranges (e.g. the pages a dirty log reported); pages outside them are not stored. */
    static RamPages ranges(List<RamRange> ranges) {
        return new Ranges(ranges);
    }

    /**
     * The data ranges of the sparse file (a memfd) whose mapping is guest RAM, found with
     * {@code lseek(SEEK_DATA/SEEK_HOLE)}: pages never touched are holes and are not read.
     * {@code ram} must be this file's mapping. Reading a hole through a shared mapping
     * allocates it, so host code that reads all of RAM first leaves no holes to skip.
     * This moves the descriptor's file offset; the descriptor stays the caller's.
     */
    static RamPages sparseFile(int fd) {
        return new SparseFile(fd);
    }

    /** See {@link RamPages#all()}. */
    record All() implements RamPages {
    }

    /** See {@link RamPages#ranges(List)}. */
    record Ranges(List<RamRange> ranges) implements RamPages {
        public Ranges {
            ranges = List.copyOf(ranges);
        }
    }

    /** See {@link RamPages#sparseFile(int)}. */
    record SparseFile(int fd) implements RamPages {
        public SparseFile {
            if (fd < 0) {
                throw new IllegalArgumentException("not a file descriptor: " + fd);
            }
        }
    }
}
