package org.nxia.portal.internal;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Optional;

import org.nxia.portal.api.PortalRegion;
import org.nxia.portal.api.Rights;

/**
 * A region mapped MAP_SHARED from a file. An anonymous region is a file in
 * {@code /dev/shm} (tmpfs, like a memfd) unlinked right after mapping, so only
 * the mapping holds its pages; a persistent one is the user's file.
 */
final class Region implements PortalRegion {

    static final long PAGE = 4096;

    private final String name;
    private final long size;
    private final String owner;
    private final Rights rights;
    private final Path file;
    private final Arena arena;
    private final MemorySegment segment;

    private Region(String name, long size, String owner, Rights rights, Path file, Arena arena, MemorySegment segment) {
        this.name = name;
        this.size = size;
        this.owner = owner;
        this.rights = rights;
        this.file = file;
        this.arena = arena;
        this.segment = segment;
    }

    static Region open(String name, long size, String owner, Rights rights, Path file) {
        Path backing = file;
        if (backing == null) {
            Path shm = Path.of("/dev/shm");
            try {
                backing = Files.createTempFile(Files.isDirectory(shm) ? shm : Path.of(System.getProperty("java.io.tmpdir")),
                        "nxia-portal-" + name + "-", "");
            } catch (IOException e) {
                throw new UncheckedIOException("portal " + name + ": cannot create anonymous shared memory: " + e.getMessage(), e);
            }
        } else if (Files.exists(backing)) {
            long existing;
            try {
                existing = Files.size(backing);
            } catch (IOException e) {
                throw new UncheckedIOException("portal " + name + ": cannot read " + backing + ": " + e.getMessage(), e);
            }
            if (existing != 0 && existing != size) {
                throw new IllegalArgumentException("portal " + name + ": " + backing + " has " + existing
                        + " bytes, not " + size + "; give its size to reopen it, or another file");
            }
        }
        Arena arena = Arena.ofShared();
        try (FileChannel channel = FileChannel.open(backing, StandardOpenOption.CREATE, StandardOpenOption.READ,
                StandardOpenOption.WRITE)) {
            if (channel.size() < size) { // a new file grows zero-filled
                channel.write(java.nio.ByteBuffer.allocate(1), size - 1);
            }
            MemorySegment segment = channel.map(FileChannel.MapMode.READ_WRITE, 0, size, arena);
            if (file == null) {
                Files.delete(backing);
            }
            return new Region(name, size, owner, rights, file, arena, segment);
        } catch (IOException | RuntimeException e) {
            arena.close();
            if (file == null) {
                try {
                    Files.deleteIfExists(backing);
                } catch (IOException ignored) {
                    // best effort: the error below says what failed
                }
            }
            if (e instanceof RuntimeException r) {
                throw r;
            }
            throw new UncheckedIOException("portal " + name + ": cannot map " + backing + ": " + e.getMessage(), (IOException) e);
        }
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    public long size() {
        return size;
    }

    @Override
    public String owner() {
        return owner;
    }

    @Override
    public Rights rights() {
        return rights;
    }

    @Override
    public Optional<Path> file() {
        return Optional.ofNullable(file);
    }

    @Override
    public MemorySegment segment() {
        return segment;
    }

    /** Writes a file-backed region's pages to the file and unmaps it. */
    void close() {
        if (file != null && segment.scope().isAlive()) {
            segment.force();
        }
        arena.close();
    }
}
