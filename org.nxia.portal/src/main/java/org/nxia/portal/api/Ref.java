package org.nxia.portal.api;

/**
 * A bounded reference into a {@link PortalArena}: the byte offset of a block
 * from the start of the shared region, the number of bytes the holder may use,
 * and the block's generation at allocation time.
 *
 * <p>A {@code Ref} is plain data and may come from an untrusted party; the arena
 * validates every field on {@link PortalArena#deref(Ref)} and
 * {@link PortalArena#free(Ref)}.
 *
 * @param offset     byte offset of the block from the start of the region
 * @param length     usable length in bytes, at least 1
 * @param generation the block's generation when it was allocated
 */
public record Ref(long offset, long length, int generation) {
}
