package org.nxia.snapshot.api;

/**
 * Stored guest pages that lie in an unencrypted snapshot file as they are, so that a restore
 * can map them ({@code mmap(MAP_PRIVATE)} of the file at {@code fileOffset} over guest RAM at
 * {@code guestOffset}): clones then share the file's pages until they write them. All three
 * are multiples of {@link SnapshotWriter#PAGE_SIZE}.
 */
public record RamExtent(long guestOffset, long fileOffset, long length) {
}
