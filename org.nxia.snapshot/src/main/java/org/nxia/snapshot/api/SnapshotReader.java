package org.nxia.snapshot.api;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import javax.crypto.SecretKey;

import org.nxia.snapshot.internal.ChunkCipher;
import org.nxia.snapshot.internal.Format;
import org.nxia.snapshot.internal.Source;
import org.nxia.snapshot.internal.TableEntry;

/**
 * Reads a snapshot file. {@code open} validates all of it before anything is handed out: the
 * header, the section table (bounds, order, no overlaps, every byte of the file accounted
 * for), the SHA-256 of the header and table and of every section, the page map against RAM's
 * size, and, encrypted, the table's tag under the key. Anything wrong is a
 * {@link SnapshotFormatException} naming the section and offset. Reading a section or RAM
 * later checks its hash (and its chunks' tags) again, so a file changed after {@code open}
 * is refused too.
 *
 * <p>Every length the file declares is checked against the file's size and the format's
 * bounds before it sizes a buffer: reading a file allocates at most a few times its size
 * (capped by {@link SnapshotWriter#MAX_SECTION_BYTES} per section) plus a fixed amount.
 *
 * <p>Opening hashes every stored byte, guest RAM included: to restore one snapshot many times
 * (clones), open it once and keep the reader. Mapped RAM ({@link #ramExtents()}) is not checked
 * again after open, so the file must not change while clones map it: keep snapshots where only
 * the VMM writes.
 *
 * <p>Not thread-safe.
 */
public final class SnapshotReader implements AutoCloseable {

    /** When the stored RAM pages' SHA-256 is checked. */
    public enum RamCheck {
        /** At open, with everything else (the default): nothing is handed out unchecked. */
        AT_OPEN,
        /**
         * When the pages are read: {@link #copyRamInto} hashes them as it copies and refuses at
         * the end, {@link #verify()} checks them, and {@link #ramExtents()} hands out pages that
         * nobody checked. Opening then costs no pass over RAM: for restores and clones of
         * snapshots kept where only the VMM writes. Encrypted pages are still authenticated
         * chunk by chunk before they are written, and the table that locates them at open.
         */
        WHEN_READ
    }

    private static final int IO_BUFFER = 1 << 20;

    private final Source source;
    private final String label;
    private final int major;
    private final int minor;
    private final boolean encrypted;
    private final ChunkCipher cipher;
    private final int chunkSize;
    private final Requirements requirements;
    private final long fileLength;
    private final List<TableEntry> entries;
    private final long[] firstCounter;
    private final int mapIndex;
    private final int pagesIndex;
    private long ramSize;
    /** Stored RAM as (guest offset, length) pairs in bytes, in file order. */
    private long[] runs = new long[0];
    private byte[] buffer;

    private SnapshotReader(Source source, String label, SecretKey key, RamCheck ramCheck) throws IOException, SnapshotFormatException {
        this.source = source;
        this.label = label;
        long size = source.size();
        fileLength = size;
        if (size < Format.FIXED_HEADER) {
            throw fail("is " + size + " bytes, shorter than the " + Format.FIXED_HEADER + "-byte header");
        }
        byte[] fixed = read(0, Format.FIXED_HEADER);
        ByteBuffer h = Format.le(fixed);
        if (!Arrays.equals(fixed, 0, Format.MAGIC.length, Format.MAGIC, 0, Format.MAGIC.length)) {
            throw fail("is not a snapshot: it does not start with NXIASNAP (offset 0)");
        }
        major = Short.toUnsignedInt(h.getShort(Format.H_MAJOR));
        minor = Short.toUnsignedInt(h.getShort(Format.H_MINOR));
        if (major != Format.MAJOR) {
            throw fail("has format version " + major + "." + minor + " (offset " + Format.H_MAJOR + "); this reader reads "
                + Format.MAJOR + ".x");
        }
        int flags = h.getInt(Format.H_FLAGS);
        if ((flags & ~Format.KNOWN_FLAGS) != 0) {
            throw fail("has unknown flags 0x" + Integer.toHexString(flags) + " (offset " + Format.H_FLAGS + ")");
        }
        encrypted = (flags & Format.FLAG_ENCRYPTED) != 0;
        int headerLength = h.getInt(Format.H_HEADER_LENGTH);
        if (headerLength < Format.FIXED_HEADER || headerLength > Format.MAX_HEADER || headerLength % 8 != 0 || headerLength > size) {
            throw fail("has a header length of " + headerLength + " (offset " + Format.H_HEADER_LENGTH + "): not a multiple of 8 in "
                + Format.FIXED_HEADER + ".." + Format.MAX_HEADER + " inside the file");
        }
        int count = h.getInt(Format.H_SECTION_COUNT);
        if (count < 0 || count > Format.MAX_SECTIONS) {
            throw fail("has " + Integer.toUnsignedString(count) + " sections (offset " + Format.H_SECTION_COUNT + "), more than "
                + Format.MAX_SECTIONS);
        }
        long declaredLength = h.getLong(Format.H_FILE_LENGTH);
        if (declaredLength != size) {
            throw fail("is " + size + " bytes but its header says " + declaredLength + " (offset " + Format.H_FILE_LENGTH
                + "): truncated or extended");
        }
        long tableOffset = h.getLong(Format.H_TABLE_OFFSET);
        int tableLength = count * Format.ENTRY;
        int trailer = Format.trailer(encrypted);
        if (tableOffset < headerLength || tableOffset % 8 != 0 || tableOffset > size || size - tableOffset != tableLength + trailer) {
            throw fail("has its section table at " + tableOffset + " (offset " + Format.H_TABLE_OFFSET + ") with " + count
                + " entries, which does not end the file at " + size);
        }
        chunkSize = h.getInt(Format.H_CHUNK_SIZE);
        if (encrypted ? Integer.bitCount(chunkSize) != 1 || chunkSize < Format.MIN_CHUNK || chunkSize > Format.MAX_CHUNK : chunkSize != 0) {
            throw fail("has a chunk size of " + chunkSize + " (offset " + Format.H_CHUNK_SIZE + "): "
                + (encrypted ? "not a power of two in " + Format.MIN_CHUNK + ".." + Format.MAX_CHUNK : "not 0 unencrypted"));
        }
        if (h.getInt(Format.H_RESERVED) != 0) {
            throw fail("has a reserved header field that is not zero (offset " + Format.H_RESERVED + ")");
        }
        if (!encrypted && !Arrays.equals(fixed, Format.H_SALT, Format.FIXED_HEADER, new byte[Format.SALT], 0, Format.SALT)) {
            throw fail("is unencrypted but has a salt (offset " + Format.H_SALT + ")");
        }
        byte[] header = read(0, headerLength);
        byte[] table = read(tableOffset, tableLength);
        byte[] digest = read(tableOffset + tableLength, Format.DIGEST);
        MessageDigest sha = Format.sha256();
        sha.update(header);
        sha.update(table);
        if (!MessageDigest.isEqual(sha.digest(), digest)) {
            throw fail("has a header and section table that do not match their SHA-256 (offset " + (tableOffset + tableLength) + ")");
        }
        if (encrypted && key != null) {
            cipher = new ChunkCipher(key, header);
            byte[] tag = read(tableOffset + tableLength + Format.DIGEST, Format.TAG);
            if (!MessageDigest.isEqual(cipher.tableTag(header, table, digest), tag)) {
                throw fail("does not authenticate: the section table's tag (offset " + (tableOffset + tableLength + Format.DIGEST)
                    + ") does not verify under this key: a wrong key, or a changed header or table");
            }
        } else if (!encrypted && key != null) {
            throw fail("is not encrypted, but a key was given: refused, as an encrypted snapshot replaced by a plain one would be");
        } else {
            cipher = null;
        }
        requirements = RequirementsCodec.decode(header, label);
        entries = parseTable(table, headerLength, tableOffset);
        int map = -1;
        int pages = -1;
        firstCounter = new long[entries.size()];
        long counter = 1;
        for (int i = 0; i < entries.size(); i++) {
            TableEntry e = entries.get(i);
            firstCounter[i] = counter;
            if (encrypted) {
                counter += Format.chunks(e.length(), chunkSize);
            }
            if (e.kind() == Format.KIND_RAM_MAP) {
                map = i;
            } else if (e.kind() == Format.KIND_RAM_PAGES) {
                pages = i;
            }
        }
        if ((map < 0) != (pages < 0)) {
            throw fail("has " + (map < 0 ? "RAM pages but no page map (ram.map)" : "a page map but no RAM pages (ram)"));
        }
        mapIndex = map;
        pagesIndex = pages;
        checkGapsAndHashes(headerLength, tableOffset, ramCheck);
        if (map >= 0 && (!encrypted || cipher != null)) {
            parseMap(content(map));
        }
    }

    /**
     * {@code snapshot verify}: opens {@code file} (with {@code key}, or {@code null}), reads every
     * section again and returns its description; a {@link SnapshotFormatException} says what is wrong.
     */
    public static SnapshotInfo verify(Path file, SecretKey key) throws IOException, SnapshotFormatException {
        try (SnapshotReader reader = open(file, key)) {
            return reader.verify();
        }
    }

    /** Opens an unencrypted snapshot, or an encrypted one for {@link #info()} only (structure and hashes, not authenticity). */
    public static SnapshotReader open(Path file) throws IOException, SnapshotFormatException {
        return open(file, null);
    }

    /**
     * Opens a snapshot encrypted with {@code key} (or, with {@code null}, as {@link #open(Path)}).
     * A key given for an unencrypted file is refused.
     */
    public static SnapshotReader open(Path file, SecretKey key) throws IOException, SnapshotFormatException {
        return open(file, key, RamCheck.AT_OPEN);
    }

    /** As {@link #open(Path, SecretKey)}, checking RAM's hash {@code ramCheck}. */
    public static SnapshotReader open(Path file, SecretKey key, RamCheck ramCheck) throws IOException, SnapshotFormatException {
        FileChannel channel = FileChannel.open(file, StandardOpenOption.READ);
        try {
            return new SnapshotReader(new Source.OfFile(channel), file.getFileName().toString(), key, ramCheck);
        } catch (IOException | SnapshotFormatException | RuntimeException e) {
            channel.close();
            throw e;
        }
    }

    /** Opens a snapshot held in memory; {@code key} as for {@link #open(Path, SecretKey)}. */
    public static SnapshotReader open(byte[] file, SecretKey key) throws SnapshotFormatException {
        return open(file, key, RamCheck.AT_OPEN);
    }

    /** As {@link #open(byte[], SecretKey)}, checking RAM's hash {@code ramCheck}. */
    public static SnapshotReader open(byte[] file, SecretKey key, RamCheck ramCheck) throws SnapshotFormatException {
        try {
            return new SnapshotReader(new Source.OfBytes(file), "the snapshot", key, ramCheck);
        } catch (IOException e) {
            throw new IllegalStateException("an array cannot fail to read", e);
        }
    }

    private SnapshotFormatException fail(String what) {
        return new SnapshotFormatException(label + " " + what);
    }

    private byte[] read(long position, int length) throws IOException {
        byte[] bytes = new byte[length];
        source.read(position, ByteBuffer.wrap(bytes));
        return bytes;
    }

    private byte[] buffer(long atLeastUpTo) {
        int size = (int) Math.min(IO_BUFFER, Math.max(1, atLeastUpTo));
        if (buffer == null || buffer.length < size) {
            buffer = new byte[size];
        }
        return buffer;
    }

    private List<TableEntry> parseTable(byte[] table, long headerLength, long tableOffset) throws SnapshotFormatException {
        ByteBuffer t = Format.le(table);
        List<TableEntry> parsed = new ArrayList<>(table.length / Format.ENTRY);
        Set<String> names = new HashSet<>();
        long previousEnd = headerLength;
        for (int i = 0, at = 0; at < table.length; i++, at += Format.ENTRY) {
            String where = "section " + i + " (table offset " + (tableOffset + at) + ")";
            int nameLength = 0;
            while (nameLength < Format.NAME_FIELD_MAX && table[at + nameLength] != 0) {
                nameLength++;
            }
            for (int k = nameLength; k < Format.NAME_FIELD_MAX; k++) {
                if (table[at + k] != 0) {
                    throw fail("has a name with bytes after its end in " + where);
                }
            }
            String name = new String(table, at, nameLength, StandardCharsets.US_ASCII);
            if (!Format.validName(name)) {
                throw fail("has a bad name in " + where + ": not 1..32 of [a-z0-9._-]");
            }
            where = "section " + name + " (table offset " + (tableOffset + at) + ")";
            if (!names.add(name)) {
                throw fail("has " + where + " twice");
            }
            int kind = Short.toUnsignedInt(t.getShort(at + Format.E_KIND));
            if (kind > Format.KIND_RAM_PAGES) {
                throw fail("has an unknown kind " + kind + " in " + where);
            }
            if (t.getShort(at + Format.E_RESERVED) != 0 || t.getInt(at + Format.E_RESERVED + 2) != 0) {
                throw fail("has reserved bytes that are not zero in " + where);
            }
            boolean ramMapName = name.equals(Format.RAM_MAP_NAME);
            boolean ramPagesName = name.equals(Format.RAM_PAGES_NAME);
            if (ramMapName != (kind == Format.KIND_RAM_MAP) || ramPagesName != (kind == Format.KIND_RAM_PAGES)) {
                throw fail("has " + where + " of kind " + kind + ": ram.map and ram are the page map and the pages, and only they");
            }
            long offset = t.getLong(at + Format.E_OFFSET);
            long stored = t.getLong(at + Format.E_STORED);
            long length = t.getLong(at + Format.E_LENGTH);
            long bound = kind == Format.KIND_RAM_PAGES ? Format.MAX_RAM : Format.MAX_SECTION;
            if (length < 0 || length > bound || kind == Format.KIND_RAM_PAGES && length % Format.PAGE != 0) {
                throw fail("has " + where + " of " + length + " bytes: " + (kind == Format.KIND_RAM_PAGES
                    ? "not whole pages up to " + bound : "more than " + bound));
            }
            if (stored != Format.storedLength(length, encrypted ? chunkSize : 0)) {
                throw fail("has " + where + " storing " + stored + " bytes for " + length + (encrypted ? " (with a tag per chunk)" : ""));
            }
            if (offset < previousEnd || offset > tableOffset || stored > tableOffset - offset) {
                throw fail("has " + where + " at offset " + offset + ", " + stored + " bytes: "
                    + (offset < previousEnd ? "overlapping what comes before it (up to " + previousEnd + ")"
                        : "outside the sections' area " + headerLength + ".." + tableOffset));
            }
            if (offset - previousEnd > Format.MAX_GAP) {
                throw fail("has " + (offset - previousEnd) + " unaccounted bytes before " + where + " at offset " + previousEnd);
            }
            if (kind == Format.KIND_RAM_PAGES && !encrypted && offset % Format.PAGE != 0) {
                throw fail("has RAM pages at offset " + offset + ", not page-aligned (" + where + ")");
            }
            byte[] hash = Arrays.copyOfRange(table, at + Format.E_SHA256, at + Format.E_SHA256 + Format.DIGEST);
            parsed.add(new TableEntry(name, kind, offset, stored, length, hash));
            previousEnd = offset + stored;
        }
        if (tableOffset - previousEnd > Format.MAX_GAP) {
            throw fail("has " + (tableOffset - previousEnd) + " unaccounted bytes before the section table at offset " + previousEnd);
        }
        return List.copyOf(parsed);
    }

    /** Every gap is zero and every section's stored bytes match their hash: every byte of the file is checked. */
    private void checkGapsAndHashes(long headerLength, long tableOffset, RamCheck ramCheck) throws IOException, SnapshotFormatException {
        long previousEnd = headerLength;
        for (TableEntry e : entries) {
            checkZero(previousEnd, e.offset());
            if (e.kind() != Format.KIND_RAM_PAGES || ramCheck == RamCheck.AT_OPEN) {
                checkHash(e);
            }
            previousEnd = e.end();
        }
        checkZero(previousEnd, tableOffset);
    }

    private void checkZero(long from, long to) throws IOException, SnapshotFormatException {
        if (from == to) {
            return;
        }
        byte[] b = buffer(to - from);
        source.read(from, ByteBuffer.wrap(b, 0, (int) (to - from)));
        for (int i = 0; i < to - from; i++) {
            if (b[i] != 0) {
                throw fail("has a non-zero byte in padding at offset " + (from + i));
            }
        }
    }

    private void checkHash(TableEntry e) throws IOException, SnapshotFormatException {
        MessageDigest sha = Format.sha256();
        byte[] b = buffer(e.stored());
        for (long at = e.offset(), end = e.end(); at < end; ) {
            int n = (int) Math.min(b.length, end - at);
            source.read(at, ByteBuffer.wrap(b, 0, n));
            sha.update(b, 0, n);
            at += n;
        }
        if (!MessageDigest.isEqual(sha.digest(), e.sha256())) {
            throw fail("has section " + e.name() + " (offset " + e.offset() + ", " + e.stored() + " bytes) that does not match its SHA-256");
        }
    }

    /** A section's content, its hash checked again and, encrypted, every chunk's tag. Lengths were bounded at open. */
    private byte[] content(int index) throws IOException, SnapshotFormatException {
        TableEntry e = entries.get(index);
        byte[] stored = read(e.offset(), (int) e.stored());
        MessageDigest sha = Format.sha256();
        sha.update(stored);
        if (!MessageDigest.isEqual(sha.digest(), e.sha256())) {
            throw fail("has section " + e.name() + " (offset " + e.offset() + ") that no longer matches its SHA-256: changed since open");
        }
        if (!encrypted) {
            return stored;
        }
        byte[] content = new byte[(int) e.length()];
        byte[] plain = new byte[(int) Math.min(chunkSize, e.length())];
        long chunks = Format.chunks(e.length(), chunkSize);
        for (long i = 0; i < chunks; i++) {
            int from = (int) (i * chunkSize);
            int n = (int) Math.min(chunkSize, e.length() - from);
            int at = (int) (i * (chunkSize + Format.TAG));
            if (!cipher.open(firstCounter[index] + i, index, i, i == chunks - 1, stored, at, n + Format.TAG, plain)) {
                throw fail("has chunk " + i + " of section " + e.name() + " (offset " + (e.offset() + at) + ") that does not authenticate");
            }
            System.arraycopy(plain, 0, content, from, n);
        }
        return content;
    }

    private void parseMap(byte[] map) throws SnapshotFormatException {
        String where = "the page map (section ram.map, offset " + entries.get(mapIndex).offset() + ")";
        if (map.length < Format.MAP_HEADER) {
            throw fail("has " + where + " of " + map.length + " bytes, shorter than its " + Format.MAP_HEADER + "-byte header");
        }
        ByteBuffer m = Format.le(map);
        long size = m.getLong(0);
        int page = m.getInt(8);
        int count = m.getInt(12);
        if (size <= 0 || size % Format.PAGE != 0 || size > Format.MAX_RAM) {
            throw fail("has " + where + " for RAM of " + size + " bytes: not a positive multiple of " + Format.PAGE + " up to " + Format.MAX_RAM);
        }
        if (page != Format.PAGE) {
            throw fail("has " + where + " for pages of " + page + " bytes; this reader knows " + Format.PAGE);
        }
        if (count < 0 || count > Format.MAX_RUNS || map.length != Format.MAP_HEADER + (long) count * Format.RUN) {
            throw fail("has " + where + " of " + map.length + " bytes for " + Integer.toUnsignedString(count) + " runs");
        }
        long pages = size / Format.PAGE;
        long previousEnd = 0;
        long stored = 0;
        long[] parsed = new long[2 * count];
        for (int i = 0; i < count; i++) {
            long first = m.getLong(Format.MAP_HEADER + i * Format.RUN);
            long n = m.getLong(Format.MAP_HEADER + i * Format.RUN + 8);
            if (first < previousEnd || first > pages || n <= 0 || n > pages - first) {
                throw fail("has run " + i + " of " + where + " (pages " + first + " +" + n + ") "
                    + (first < previousEnd ? "before the end of the run before it" : "outside RAM's " + pages + " pages"));
            }
            parsed[2 * i] = first * Format.PAGE;
            parsed[2 * i + 1] = n * Format.PAGE;
            stored += n * Format.PAGE;
            previousEnd = first + n;
        }
        TableEntry pagesEntry = entries.get(pagesIndex);
        if (stored != pagesEntry.length()) {
            throw fail("has " + where + " naming " + stored + " bytes of pages, but section ram holds " + pagesEntry.length());
        }
        ramSize = size;
        runs = parsed;
    }

    /** The header and section table. */
    public SnapshotInfo info() {
        List<SectionInfo> sections = new ArrayList<>(entries.size());
        for (TableEntry e : entries) {
            sections.add(new SectionInfo(e.name(), SectionInfo.Kind.values()[e.kind()], e.offset(), e.stored(), e.length(), e.hex()));
        }
        return new SnapshotInfo(major, minor, encrypted, !encrypted || cipher != null, requirements, fileLength, sections, ramSize,
            pagesIndex < 0 ? 0 : entries.get(pagesIndex).length());
    }

    /** What a host must offer to restore this snapshot. */
    public Requirements requirements() {
        return requirements;
    }

    /** The data sections' names, in file order (not {@code ram.map} and {@code ram}). */
    public List<String> sectionNames() {
        List<String> names = new ArrayList<>();
        for (TableEntry e : entries) {
            if (e.kind() == Format.KIND_DATA) {
                names.add(e.name());
            }
        }
        return names;
    }

    public boolean hasSection(String name) {
        return indexOf(name) >= 0;
    }

    private int indexOf(String name) {
        for (int i = 0; i < entries.size(); i++) {
            if (entries.get(i).kind() == Format.KIND_DATA && entries.get(i).name().equals(name)) {
                return i;
            }
        }
        return -1;
    }

    /** A data section's content; a missing section is a {@link SnapshotFormatException} (the VMM expected it). */
    public byte[] section(String name) throws IOException, SnapshotFormatException {
        checkReadable();
        int index = indexOf(name);
        if (index < 0) {
            throw fail("has no section " + name);
        }
        return content(index);
    }

    /** Whether the snapshot holds guest RAM. */
    public boolean hasRam() {
        return pagesIndex >= 0;
    }

    /** Guest RAM's size in bytes (0 without RAM). */
    public long ramSize() {
        checkReadable();
        return ramSize;
    }

    /** The guest ranges whose pages are stored, ascending; every other page of RAM was zero. */
    public List<RamRange> ramRanges() {
        checkReadable();
        List<RamRange> ranges = new ArrayList<>(runs.length / 2);
        for (int i = 0; i < runs.length; i += 2) {
            ranges.add(new RamRange(runs[i], runs[i + 1]));
        }
        return ranges;
    }

    /**
     * Where an unencrypted file holds each stored range, for {@code mmap(MAP_PRIVATE)}; the
     * caller maps zero pages (or leaves them untouched) elsewhere.
     *
     * @throws IllegalStateException for an encrypted snapshot (its pages must be decrypted: {@link #copyRamInto})
     */
    public List<RamExtent> ramExtents() {
        checkReadable();
        if (encrypted) {
            throw new IllegalStateException(label + " is encrypted: its RAM cannot be mapped, only copied");
        }
        List<RamExtent> extents = new ArrayList<>(runs.length / 2);
        long fileOffset = pagesIndex < 0 ? 0 : entries.get(pagesIndex).offset();
        for (int i = 0; i < runs.length; i += 2) {
            extents.add(new RamExtent(runs[i], fileOffset, runs[i + 1]));
            fileOffset += runs[i + 1];
        }
        return extents;
    }

    /** As {@link #copyRamInto(MemorySegment, SaveProgress)} without progress. */
    public void copyRamInto(MemorySegment target) throws IOException, SnapshotFormatException {
        copyRamInto(target, SaveProgress.NONE);
    }

    /**
     * Copies the stored pages into {@code target}, guest RAM of {@code target.byteSize()}
     * bytes, at their guest offsets; other pages are not written (give zeroed memory). A
     * snapshot whose RAM is larger than {@code target} is refused before anything is written;
     * a chunk that does not authenticate is refused before its bytes are written. Pages that
     * do not match their hash (a file changed since open, or opened with
     * {@link RamCheck#WHEN_READ}) are refused at the end, when they have been copied.
     */
    public void copyRamInto(MemorySegment target, SaveProgress progress) throws IOException, SnapshotFormatException {
        checkReadable();
        if (pagesIndex < 0) {
            throw fail("holds no guest RAM");
        }
        if (ramSize > target.byteSize()) {
            throw fail("holds RAM of " + ramSize + " bytes, more than the " + target.byteSize() + " bytes given");
        }
        for (int i = 0; i < runs.length; i += 2) {
            if (runs[i] + runs[i + 1] > target.byteSize()) {
                throw fail("has a page map run at guest offset " + runs[i] + " past the " + target.byteSize() + " bytes given");
            }
        }
        TableEntry e = entries.get(pagesIndex);
        MessageDigest sha = Format.sha256();
        long total = e.length();
        progress.progress(0, total);
        if (encrypted) {
            copyEncrypted(target, e, sha, progress);
        } else {
            long fileOffset = e.offset();
            long done = 0;
            for (int i = 0; i < runs.length; i += 2) {
                for (long at = runs[i], end = runs[i] + runs[i + 1]; at < end; ) {
                    long n = Math.min(IO_BUFFER * 8L, end - at);
                    ByteBuffer slice = target.asSlice(at, n).asByteBuffer();
                    source.read(fileOffset, slice);
                    sha.update(slice.flip());
                    at += n;
                    fileOffset += n;
                    done += n;
                    progress.progress(done, total);
                }
            }
        }
        if (!MessageDigest.isEqual(sha.digest(), e.sha256())) {
            throw fail("has RAM pages (offset " + e.offset() + ") that do not match their SHA-256 (changed since open, or not checked at open)");
        }
    }

    /** Decrypts RAM chunk by chunk into {@code target}, or only checks it when {@code target} is null. */
    private void copyEncrypted(MemorySegment target, TableEntry e, MessageDigest sha, SaveProgress progress)
        throws IOException, SnapshotFormatException {
        long total = e.length();
        long chunks = Format.chunks(total, chunkSize);
        byte[] stored = new byte[(int) Math.min(chunkSize, total) + Format.TAG];
        byte[] plain = new byte[(int) Math.min(chunkSize, total)];
        MemorySegment plainSegment = MemorySegment.ofArray(plain);
        int run = 0;
        long runDone = 0;
        long done = 0;
        for (long i = 0; i < chunks; i++) {
            int n = (int) Math.min(chunkSize, total - i * chunkSize);
            long at = e.offset() + i * (chunkSize + Format.TAG);
            source.read(at, ByteBuffer.wrap(stored, 0, n + Format.TAG));
            sha.update(stored, 0, n + Format.TAG);
            if (!cipher.open(firstCounter[pagesIndex] + i, pagesIndex, i, i == chunks - 1, stored, 0, n + Format.TAG, plain)) {
                throw fail("has RAM chunk " + i + " (offset " + at + ") that does not authenticate");
            }
            for (int copied = 0; target != null && copied < n; ) {
                long piece = Math.min(n - copied, runs[2 * run + 1] - runDone);
                MemorySegment.copy(plainSegment, copied, target, runs[2 * run] + runDone, piece);
                copied += (int) piece;
                runDone += piece;
                if (runDone == runs[2 * run + 1]) {
                    run++;
                    runDone = 0;
                }
            }
            done += n;
            progress.progress(done, total);
        }
    }

    /**
     * Reads every section again, checking its hash and, encrypted, every chunk's tag; RAM is
     * decrypted chunk by chunk without a target. Returns {@link #info()}.
     */
    public SnapshotInfo verify() throws IOException, SnapshotFormatException {
        for (int i = 0; i < entries.size(); i++) {
            TableEntry e = entries.get(i);
            if (e.kind() != Format.KIND_RAM_PAGES) {
                if (encrypted && cipher != null) {
                    content(i);
                } else {
                    checkHash(e);
                }
            } else if (encrypted && cipher != null) {
                MessageDigest sha = Format.sha256();
                copyEncrypted(null, e, sha, SaveProgress.NONE);
                if (!MessageDigest.isEqual(sha.digest(), e.sha256())) {
                    throw fail("has RAM pages (offset " + e.offset() + ") that do not match their SHA-256 (changed since open, or not checked at open)");
                }
            } else {
                checkHash(e);
            }
        }
        return info();
    }

    private void checkReadable() {
        if (encrypted && cipher == null) {
            throw new IllegalStateException(label + " is encrypted and was opened without its key: only info() is available");
        }
    }

    @Override
    public void close() throws IOException {
        source.close();
    }
}
