package org.nxia.vmm.spi;

import java.nio.file.Path;
import java.util.List;
import java.util.Objects;

/**
 * Guest RAM stored page by page in a file, as an unencrypted snapshot file holds it: each
 * {@link Extent} says where a run of guest pages lies in the file; every other page of RAM is
 * zero. {@link org.nxia.vmm.api.VmManager#clone} maps these pages copy-on-write ({@code MAP_PRIVATE}), so clones of
 * one file share its pages until they write them, and nothing a clone writes reaches the file.
 *
 * <p>The file is hostile input: the record checks the extents' shape here, and the backend checks
 * them against the file's size when it maps them. The file stays part of every clone mapped from it:
 * it must not be truncated or rewritten while they run (pages not yet copied would follow it).
 *
 * @param file      the file
 * @param ramBytes  the guest RAM the extents describe (the VM's memory)
 * @param extents   ascending, non-overlapping, inside {@code ramBytes}
 */
public record RamFile(Path file, long ramBytes, List<Extent> extents) {

    /** At most this many extents: a snapshot file's page map holds at most 1,048,575 runs. */
    public static final int MAX_EXTENTS = 1 << 20;

    /**
     * Guest pages {@code [gpa, gpa + length)} stored at {@code fileOffset}: all three multiples of
     * {@link GuestRange#PAGE}, the length positive.
     */
    public record Extent(long gpa, long fileOffset, long length) {

        public Extent {
            new GuestRange(gpa, length);   // checks gpa and length
            if (fileOffset < 0 || fileOffset % GuestRange.PAGE != 0 || fileOffset > Long.MAX_VALUE - length) {
                throw new IllegalArgumentException("a RAM extent's file offset must be page-aligned and leave room for its "
                        + length + " bytes, not 0x%x".formatted(fileOffset));
            }
        }

        public long end() {
            return gpa + length;
        }
    }

    public RamFile {
        Objects.requireNonNull(file, "file");
        if (ramBytes <= 0 || ramBytes % GuestRange.PAGE != 0) {
            throw new IllegalArgumentException("guest RAM must be a positive multiple of 4096 bytes, not " + ramBytes);
        }
        if (extents.size() > MAX_EXTENTS) {
            throw new IllegalArgumentException(file + " names " + extents.size() + " RAM extents; at most " + MAX_EXTENTS);
        }
        extents = List.copyOf(extents);
        long previousEnd = 0;
        for (Extent e : extents) {
            if (e.gpa() < previousEnd || e.end() > ramBytes) {
                throw new IllegalArgumentException("RAM extent at 0x%x (+0x%x) of %s overlaps the one before or lies outside the %d bytes of RAM"
                        .formatted(e.gpa(), e.length(), file, ramBytes));
            }
            previousEnd = e.end();
        }
    }

    /** Bytes of RAM the file holds. */
    public long storedBytes() {
        return extents.stream().mapToLong(Extent::length).sum();
    }
}
