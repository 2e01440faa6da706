package org.nxia.snapshot.api;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import javax.crypto.SecretKey;

import org.nxia.snapshot.internal.ChunkCipher;
import org.nxia.snapshot.internal.Format;
import org.nxia.snapshot.internal.HashThread;
import org.nxia.snapshot.internal.LongList;
import org.nxia.snapshot.internal.RamView;
import org.nxia.snapshot.internal.RunBuilder;
import org.nxia.snapshot.internal.SeekData;
import org.nxia.snapshot.internal.TableEntry;

/**
 * Writes one snapshot file (docs/snapshot-format.md): named sections, then at most once guest
 * RAM (sparse: only pages that are not all zero), then {@link #finish()}. The file appears
 * under its name only when finished (written to a hidden sibling, synced, renamed), readable
 * by its owner only; {@link #close()} before {@code finish()} leaves nothing behind.
 *
 * <p>A {@link SaveProgress} that throws aborts the save; {@link #close()} then deletes the
 * partial file. Not thread-safe: one thread writes a snapshot.
 */
public final class SnapshotWriter implements AutoCloseable {

    /** Guest page size: RAM is stored in whole pages of this size. */
    public static final int PAGE_SIZE = Format.PAGE;
    /** The largest data section (and page map): 16 MiB. */
    public static final long MAX_SECTION_BYTES = Format.MAX_SECTION;
    /** The most sections in a file, RAM's two included. */
    public static final int MAX_SECTIONS = Format.MAX_SECTIONS;
    /** The largest guest RAM: 1 TiB. */
    public static final long MAX_RAM_BYTES = Format.MAX_RAM;
    /** Bytes of RAM written to the file per write call, and between progress reports. */
    private static final int RAM_WRITE = 8 << 20;

    private final Path target;
    private final Path temp;
    private final FileChannel channel;
    private final byte[] header;
    private final ChunkCipher cipher;
    private final int chunkSize;
    private final List<TableEntry> entries = new ArrayList<>();
    private final Set<String> names = new HashSet<>();
    private long position;
    private long counter = 1;
    private boolean ramWritten;
    private long ramSize;
    private boolean finished;

    private SnapshotWriter(Path target, Requirements requirements, SecretKey key, int chunkSize) throws IOException {
        this.target = target.toAbsolutePath();
        if (Files.exists(this.target, LinkOption.NOFOLLOW_LINKS)) {
            throw new FileAlreadyExistsException(this.target.toString(), null, "a snapshot is never overwritten");
        }
        byte[] salt = new byte[Format.SALT];
        if (key != null) {
            new SecureRandom().nextBytes(salt);
        }
        this.header = header(requirements, key != null, chunkSize, salt);
        this.cipher = key == null ? null : new ChunkCipher(key, header);
        this.chunkSize = chunkSize;
        this.temp = Files.createTempFile(this.target.getParent(), "." + this.target.getFileName() + ".", ".partial");
        this.channel = FileChannel.open(temp, StandardOpenOption.WRITE);
        this.position = header.length;
    }

    /** Starts an unencrypted snapshot at {@code file}, which must not exist. */
    public static SnapshotWriter create(Path file, Requirements requirements) throws IOException {
        return new SnapshotWriter(file, requirements, null, 0);
    }

    /** Starts a snapshot at {@code file}, which must not exist, encrypted with {@code key} (AES-256, see {@link SnapshotKeys}). */
    public static SnapshotWriter createEncrypted(Path file, Requirements requirements, SecretKey key) throws IOException {
        return createEncrypted(file, requirements, key, Format.DEFAULT_CHUNK);
    }

    /** As {@link #createEncrypted(Path, Requirements, SecretKey)} with another chunk size: small files for the test corpus. */
    static SnapshotWriter createEncrypted(Path file, Requirements requirements, SecretKey key, int chunkSize) throws IOException {
        if (Integer.bitCount(chunkSize) != 1 || chunkSize < Format.MIN_CHUNK || chunkSize > Format.MAX_CHUNK) {
            throw new IllegalArgumentException("chunk size " + chunkSize);
        }
        return new SnapshotWriter(file, requirements, key, chunkSize);
    }

    private static byte[] header(Requirements requirements, boolean encrypted, int chunkSize, byte[] salt) {
        byte[] encoded = RequirementsCodec.encode(requirements);
        byte[] header = new byte[(int) Format.align(Format.FIXED_HEADER + encoded.length, 8)];
        ByteBuffer b = Format.le(header);
        b.put(Format.H_MAGIC, Format.MAGIC);
        b.putShort(Format.H_MAJOR, (short) Format.MAJOR);
        b.putShort(Format.H_MINOR, (short) Format.MINOR);
        b.putInt(Format.H_FLAGS, encrypted ? Format.FLAG_ENCRYPTED : 0);
        b.putInt(Format.H_HEADER_LENGTH, header.length);
        b.putInt(Format.H_CHUNK_SIZE, chunkSize);
        b.put(Format.H_SALT, salt);
        b.put(Format.FIXED_HEADER, encoded);
        return header;
    }

    /**
     * Adds a section: {@code name} is 1..32 of {@code [a-z0-9._-]} starting with a letter or
     * digit, not {@code ram} or {@code ram.map} (see {@link #ram}), unique in the file; at most
     * {@link #MAX_SECTION_BYTES}.
     */
    public void section(String name, byte[] content) throws IOException {
        checkOpen();
        if (!Format.validName(name) || name.equals(Format.RAM_MAP_NAME) || name.equals(Format.RAM_PAGES_NAME)) {
            throw new IllegalArgumentException("not a section name: '" + name + "' (1..32 of [a-z0-9._-], not ram or ram.map)");
        }
        if (content.length > Format.MAX_SECTION) {
            throw new IllegalArgumentException("section " + name + " has " + content.length + " bytes, more than " + Format.MAX_SECTION);
        }
        data(name, Format.KIND_DATA, content);
    }

    private void data(String name, int kind, byte[] content) throws IOException {
        if (!names.add(name)) {
            throw new IllegalArgumentException("section " + name + " is already in the snapshot");
        }
        int needed = kind == Format.KIND_DATA ? (ramWritten ? 1 : 3) : 2;   // RAM's two stay free until RAM is written
        if (entries.size() + needed > Format.MAX_SECTIONS) {
            throw new IllegalArgumentException("more than " + Format.MAX_SECTIONS + " sections (RAM's two included)");
        }
        MessageDigest sha = Format.sha256();
        long offset = position;
        if (cipher == null) {
            sha.update(content);
            write(ByteBuffer.wrap(content));
        } else {
            int section = entries.size();
            byte[] out = new byte[Math.min(chunkSize, content.length) + Format.TAG];
            long chunks = Format.chunks(content.length, chunkSize);
            for (long i = 0; i < chunks; i++) {
                int from = (int) (i * chunkSize);
                int n = Math.min(chunkSize, content.length - from);
                int sealed = cipher.seal(counter++, section, i, i == chunks - 1, content, from, n, out);
                sha.update(out, 0, sealed);
                write(ByteBuffer.wrap(out, 0, sealed));
            }
        }
        entries.add(new TableEntry(name, kind, offset, position - offset, content.length, sha.digest()));
    }

    private void write(ByteBuffer bytes) throws IOException {
        while (bytes.hasRemaining()) {
            position += channel.write(bytes, position);
        }
    }

    /**
     * Adds guest RAM: {@code ram}'s size (a multiple of {@link #PAGE_SIZE}, at most
     * {@link #MAX_RAM_BYTES}) and its pages that lie in {@code pages} and are not all zero,
     * as sections {@code ram.map} and {@code ram}. Unencrypted, the pages start on a page
     * boundary of the file, so that a restore can map them. The VM must not run meanwhile.
     */
    public void ram(MemorySegment ram, RamPages pages, SaveProgress progress) throws IOException {
        checkRam(ram.byteSize());
        RunBuilder builder = new RunBuilder(Format.MAX_RUNS);
        scan(ram, pages, builder);
        ram(RamView.whole(ram), builder.finish(), progress);
    }

    /**
     * Adds guest RAM of {@code size} bytes held in {@code pieces} at their offsets (page-aligned,
     * ascending, not overlapping; RAM outside them is zero): their pages that are not all zero,
     * as {@link #ram(MemorySegment, RamPages, SaveProgress)} does, read from the pieces where
     * they are rather than from a copy of RAM laid out whole.
     */
    public void ram(long size, List<RamPiece> pieces, SaveProgress progress) throws IOException {
        checkRam(size);
        long[] offsets = new long[pieces.size()];
        MemorySegment[] bytes = new MemorySegment[pieces.size()];
        for (int i = 0; i < offsets.length; i++) {
            offsets[i] = pieces.get(i).offset();
            bytes[i] = pieces.get(i).bytes();
        }
        RamView view = new RamView(size, offsets, bytes);
        RunBuilder builder = new RunBuilder(Format.MAX_RUNS);
        view.scan(builder);
        ram(view, builder.finish(), progress);
    }

    private void checkRam(long size) {
        checkOpen();
        if (ramWritten) {
            throw new IllegalStateException("RAM is already in the snapshot");
        }
        if (size == 0 || size % Format.PAGE != 0 || size > Format.MAX_RAM) {
            throw new IllegalArgumentException("guest RAM of " + size + " bytes: not a positive multiple of " + Format.PAGE
                + " up to " + Format.MAX_RAM);
        }
    }

    private void ram(RamView ram, LongList runs, SaveProgress progress) throws IOException {
        long size = ram.size();
        int count = runs.size() / 2;
        byte[] map = new byte[Format.MAP_HEADER + count * Format.RUN];
        ByteBuffer m = Format.le(map);
        m.putLong(0, size).putInt(8, Format.PAGE).putInt(12, count);
        long total = 0;
        for (int i = 0; i < count; i++) {
            long start = runs.get(2 * i);
            long end = runs.get(2 * i + 1);
            m.putLong(Format.MAP_HEADER + i * Format.RUN, start / Format.PAGE);
            m.putLong(Format.MAP_HEADER + i * Format.RUN + 8, (end - start) / Format.PAGE);
            total += end - start;
        }
        data(Format.RAM_MAP_NAME, Format.KIND_RAM_MAP, map);
        ramWritten = true;
        ramSize = size;
        names.add(Format.RAM_PAGES_NAME);
        if (cipher == null) {
            position = Format.align(position, Format.PAGE);
        }
        long offset = position;
        progress.progress(0, total);
        byte[] digest = cipher == null ? plainPages(ram, runs, total, progress) : encryptedPages(ram, runs, total, progress);
        entries.add(new TableEntry(Format.RAM_PAGES_NAME, Format.KIND_RAM_PAGES, offset, position - offset, total, digest));
    }

    /** Writes the runs' pages as they are, hashing them on a second thread meanwhile where {@code ram} allows it. */
    private byte[] plainPages(RamView ram, LongList runs, long total, SaveProgress progress) throws IOException {
        try (HashThread hash = new HashThread()) {
            MessageDigest inline = hash.canRead(ram) ? null : Format.sha256();
            if (inline == null) {
                hash.start();
            }
            long done = 0;
            for (int i = 0; i < runs.size(); i += 2) {
                for (long at = runs.get(i), end = runs.get(i + 1); at < end; ) {
                    MemorySegment bytes = ram.slice(at, Math.min(RAM_WRITE, end - at));
                    long n = bytes.byteSize();
                    ByteBuffer slice = bytes.asByteBuffer();
                    if (inline != null) {
                        inline.update(slice.duplicate());
                    } else {
                        hash.update(slice.duplicate());
                    }
                    write(slice);
                    at += n;
                    done += n;
                    progress.progress(done, total);
                }
            }
            return inline != null ? inline.digest() : hash.digest();
        }
    }

    /** Ciphertext buffers in rotation: one being sealed and written while the hash thread reads the others. */
    private static final int SEALED_BUFFERS = 3;

    /** Encrypts the runs' pages chunk by chunk and writes them, hashing the ciphertext on a second thread meanwhile. */
    private byte[] encryptedPages(RamView ram, LongList runs, long total, SaveProgress progress) throws IOException {
        int section = entries.size();
        byte[] plain = new byte[(int) Math.min(chunkSize, total)];
        byte[][] sealed = new byte[SEALED_BUFFERS][plain.length + Format.TAG];
        MemorySegment buffer = MemorySegment.ofArray(plain);
        long chunks = Format.chunks(total, chunkSize);
        long chunk = 0;
        int filled = 0;
        long done = 0;
        try (HashThread hash = new HashThread().start()) {
            for (int i = 0; i < runs.size(); i += 2) {
                for (long at = runs.get(i), end = runs.get(i + 1); at < end; ) {
                    MemorySegment bytes = ram.slice(at, Math.min(plain.length - filled, end - at));
                    int n = (int) bytes.byteSize();
                    MemorySegment.copy(bytes, 0, buffer, filled, n);
                    filled += n;
                    at += n;
                    done += n;
                    if (filled == plain.length || done == total) {
                        hash.awaitHashed(chunk - SEALED_BUFFERS + 1);   // the buffer's last chunk is hashed
                        byte[] out = sealed[(int) (chunk % SEALED_BUFFERS)];
                        int length = cipher.seal(counter++, section, chunk, chunk == chunks - 1, plain, 0, filled, out);
                        hash.update(ByteBuffer.wrap(out, 0, length));
                        write(ByteBuffer.wrap(out, 0, length));
                        chunk++;
                        filled = 0;
                        progress.progress(done, total);
                    }
                }
            }
            return hash.digest();
        }
    }

    /** Feeds the non-zero pages among {@code pages} to {@code runs}, in ascending order. */
    private static void scan(MemorySegment ram, RamPages pages, RunBuilder runs) throws IOException {
        long size = ram.byteSize();
        switch (pages) {
            case RamPages.All a -> runs.scan(ram, 0, size);
            case RamPages.Ranges r -> {
                List<RamRange> sorted = new ArrayList<>(r.ranges());
                sorted.sort(Comparator.comparingLong(RamRange::offset));
                long scanned = 0;
                for (RamRange range : sorted) {
                    if (range.end() > size) {
                        throw new IllegalArgumentException(range + " lies outside guest RAM of " + size + " bytes");
                    }
                    long from = Math.max(range.offset(), scanned);   // overlapping ranges: each page once
                    if (from < range.end()) {
                        runs.scan(ram, from, range.end());
                        scanned = range.end();
                    }
                }
            }
            case RamPages.SparseFile f -> SeekData.dataRanges(f.fd(), size, (start, end) -> runs.scan(ram, start, end));
        }
    }

    /**
     * Writes the section table, its digest (and its tag when encrypted) and the header, syncs
     * the file and gives it its name. Returns what a reader will see.
     */
    public SnapshotInfo finish() throws IOException {
        checkOpen();
        boolean encrypted = cipher != null;
        long tableOffset = Format.align(position, 8);
        byte[] table = new byte[entries.size() * Format.ENTRY];
        ByteBuffer t = Format.le(table);
        for (int i = 0; i < entries.size(); i++) {
            entries.get(i).encode(t, i * Format.ENTRY);
        }
        long fileLength = tableOffset + table.length + Format.trailer(encrypted);
        Format.le(header).putInt(Format.H_SECTION_COUNT, entries.size()).putLong(Format.H_TABLE_OFFSET, tableOffset)
            .putLong(Format.H_FILE_LENGTH, fileLength);
        MessageDigest sha = Format.sha256();
        sha.update(header);
        sha.update(table);
        byte[] digest = sha.digest();
        position = tableOffset;
        write(ByteBuffer.wrap(table));
        write(ByteBuffer.wrap(digest));
        if (encrypted) {
            write(ByteBuffer.wrap(cipher.tableTag(header, table, digest)));
        }
        position = 0;
        write(ByteBuffer.wrap(header));
        channel.force(true);
        channel.close();
        Files.move(temp, target, StandardCopyOption.ATOMIC_MOVE);
        finished = true;
        try (FileChannel directory = FileChannel.open(target.getParent(), StandardOpenOption.READ)) {
            directory.force(true);   // the rename itself survives a crash
        }
        List<SectionInfo> sections = new ArrayList<>();
        long ramStored = 0;
        for (TableEntry e : entries) {
            sections.add(new SectionInfo(e.name(), SectionInfo.Kind.values()[e.kind()], e.offset(), e.stored(), e.length(), e.hex()));
            if (e.kind() == Format.KIND_RAM_PAGES) {
                ramStored = e.length();
            }
        }
        return new SnapshotInfo(Format.MAJOR, Format.MINOR, encrypted, true, RequirementsCodec.decodeTrusted(header),
            fileLength, sections, ramSize, ramStored);
    }

    private void checkOpen() {
        if (finished || !channel.isOpen()) {
            throw new IllegalStateException("the snapshot writer for " + target + " is finished or closed");
        }
    }

    /** Abandons an unfinished snapshot: its partial file is deleted. After {@link #finish()}, nothing. */
    @Override
    public void close() throws IOException {
        if (!finished) {
            channel.close();
            Files.deleteIfExists(temp);
        }
    }
}
