package org.nxia.shell.support;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import javax.crypto.SecretKey;

import org.nxia.snapshot.api.RamExtent;
import org.nxia.snapshot.api.RamPiece;
import org.nxia.snapshot.api.RamRange;
import org.nxia.snapshot.api.Requirements;
import org.nxia.snapshot.api.SaveProgress;
import org.nxia.snapshot.api.SnapshotFormatException;
import org.nxia.snapshot.api.SnapshotInfo;
import org.nxia.snapshot.api.SnapshotReader;
import org.nxia.snapshot.api.SnapshotWriter;
import org.nxia.vmm.spi.DescriptorTable;
import org.nxia.vmm.spi.HostPlacement;
import org.nxia.vmm.api.LinuxProfile;
import org.nxia.vmm.spi.PartitionState;
import org.nxia.vmm.spi.RamFile;
import org.nxia.vmm.spi.Registers;
import org.nxia.vmm.spi.Segment;
import org.nxia.vmm.spi.SpecialRegisters;
import org.nxia.vmm.spi.StatePart;
import org.nxia.vmm.spi.VcpuState;
import org.nxia.vmm.api.VmProfile;
import org.nxia.vmm.api.VmSnapshot;
import org.nxia.vmm.api.VmSpec;
import org.nxia.vmm.api.device.DeviceConfig;

/**
 * A {@link VmSnapshot} in a snapshot file (docs/snapshot-format.md): sections
 * {@code vm.spec}, {@code vcpu.N}, {@code partition}, {@code device.N.TYPE}
 * and the touched RAM, of a micro-VM or a Linux VM, and any sections of the
 * caller's beside them (a System VM's agent state). Each section's encoding
 * here starts with a version byte. Reading treats the file as hostile: the
 * reader checks the file's structure and hashes; this class checks every
 * count, length and name it decodes and that nothing follows a section's
 * last field.
 */
public final class VmSnapshotFile {

    /** What a file held: the VM, and the caller's sections by name. */
    public record Contents(VmSnapshot vm, Map<String, byte[]> extra) {
        public Contents {
            extra = Map.copyOf(extra);
        }
    }

    static final String ARCHITECTURE = "x86_64";
    private static final int VERSION = 1;
    /** {@code vm.spec}'s encoding: 2 adds a Linux VM's ACPI choice and manifest, which 1 lost. */
    private static final int SPEC_VERSION = 2;
    private static final int KIND_MICRO = 0;
    private static final int KIND_LINUX = 1;
    private static final Pattern EXTRA_SECTION = Pattern.compile("[a-z]+\\.[a-z][a-z.]*");
    private static final Set<String> VM_SECTION_PREFIXES = Set.of("vm", "vcpu", "partition", "device", "portal");
    private static final int MAX_PARTS = 64;
    private static final int MAX_PART_BYTES = 1 << 20;
    private static final int MAX_DEVICES = 64;
    private static final int MAX_PARAMETERS = 64;
    private static final Pattern DEVICE_SECTION = Pattern.compile("device\\.(\\d{1,2})\\.(.+)");
    private static final Pattern PORTAL_SECTION = Pattern.compile("portal\\.(0|[1-9]\\d?)(?:\\.(0|[1-9]\\d{0,2}))?");
    /** A Portal region's content goes in pieces of this size, all-zero ones left out. */
    static final int PORTAL_PIECE = 8 << 20;
    /** A region is at most the platform's largest (org.nxia.portal's 256 MiB); all of a file's at most 1 GiB. */
    static final long MAX_PORTAL_BYTES = 256L << 20;
    static final long MAX_PORTALS_BYTES = 1L << 30;
    static final int MAX_PORTALS = 64;
    /** A file-backed region's path, in UTF-8 bytes (Linux's PATH_MAX). */
    static final int MAX_PORTAL_PATH = 4096;
    /** {@code portal.I}'s encoding for a file-backed region: its file's path and the content's SHA-256 after the size. */
    private static final int PORTAL_FILE_VERSION = 2;

    private VmSnapshotFile() {
    }

    /** A line on {@code out} per quarter of the RAM saved, for saves big enough (64 MiB) to take a while. */
    public static SaveProgress progressLines(PrintStream out) {
        return new SaveProgress() {
            private int quarter;

            @Override
            public void progress(long done, long total) {
                if (total < 64L << 20) {
                    return;
                }
                int q = (int) (4 * done / total);
                if (q > quarter && q < 4) {
                    quarter = q;
                    out.println("  RAM saved: " + Text.size(done) + " of " + Text.size(total));
                }
            }
        };
    }

    /** Writes {@code snapshot} to {@code file} (which must not exist), encrypted when {@code key} is not null. */
    public static SnapshotInfo write(VmSnapshot snapshot, Path file, SecretKey key) throws IOException {
        return write(snapshot, file, key, Map.of(), SaveProgress.NONE);
    }

    /**
     * Writes {@code snapshot} and the caller's {@code extra} sections (names like {@code systemvm.agent}:
     * lower-case words with dots, none of the VM's own) to {@code file}, which must not exist.
     */
    public static SnapshotInfo write(VmSnapshot snapshot, Path file, SecretKey key, Map<String, byte[]> extra, SaveProgress progress)
            throws IOException {
        for (String name : extra.keySet()) {
            if (!EXTRA_SECTION.matcher(name).matches() || VM_SECTION_PREFIXES.contains(name.substring(0, name.indexOf('.')))) {
                throw new IllegalArgumentException("'" + name + "' is not a name for a section of the caller's");
            }
        }
        Requirements requirements = new Requirements(ARCHITECTURE, snapshot.backend(), new byte[0], new byte[0]);
        try (SnapshotWriter w = key == null ? SnapshotWriter.create(file, requirements) : SnapshotWriter.createEncrypted(file, requirements, key)) {
            w.section("vm.spec", spec(snapshot.spec()));
            for (VcpuState v : snapshot.vcpus()) {
                w.section("vcpu." + v.id(), vcpu(v));
            }
            w.section("partition", parts(snapshot.partition().parts()));
            for (int i = 0; i < snapshot.devices().size(); i++) {
                VmSnapshot.DeviceState d = snapshot.devices().get(i);
                w.section("device." + i + "." + d.type(), d.state());
            }
            writePortals(w, snapshot.portals());
            for (Map.Entry<String, byte[]> e : extra.entrySet()) {
                w.section(e.getKey(), e.getValue());
            }
            // the writer reads the saved chunks where they are: no copy of RAM laid out whole
            List<RamPiece> pieces = new ArrayList<>();
            for (VmSnapshot.RamChunk c : snapshot.ram()) {
                pieces.add(new RamPiece(c.gpa(), c.bytes()));
            }
            w.ram(snapshot.spec().memoryBytes(), pieces, progress);
            return w.finish();
        }
    }

    /** Reads a snapshot file; a file this VMM cannot take whole is refused, saying why. */
    public static VmSnapshot read(Path file, SecretKey key) throws IOException, SnapshotFormatException {
        return readWhole(file, key).vm();
    }

    /** Reads a snapshot file with the caller's sections; a file this VMM cannot take whole is refused, saying why. */
    public static Contents readWhole(Path file, SecretKey key) throws IOException, SnapshotFormatException {
        try (SnapshotReader r = key == null ? SnapshotReader.open(file) : SnapshotReader.open(file, key)) {
            return decode(r, file, true);
        }
    }

    /**
     * What a copy-on-write clone is made of ({@code VmManager.clone}): the VM's state, without RAM, and where
     * the file holds each stored run of RAM pages. Only an unencrypted file's pages can be mapped. The file is
     * checked whole here, RAM's hash included, once for all the clones made of it.
     */
    public record CloneSource(VmSnapshot vm, RamFile ram) {
    }

    /**
     * Reads a plain snapshot file for clones; an encrypted one is refused (its pages must be decrypted: a
     * restore copies them), and so is one this VMM cannot take whole.
     */
    public static CloneSource readForClone(Path file) throws IOException, SnapshotFormatException {
        try (SnapshotReader r = SnapshotReader.open(file)) {
            if (r.info().encrypted()) {
                throw new IllegalArgumentException(file + " is encrypted: its RAM cannot be mapped; an encrypted snapshot is restored"
                        + " by copy: vm:restore -k KEY " + file);
            }
            VmSnapshot vm = decode(r, file, false).vm();
            List<RamFile.Extent> extents = new ArrayList<>();
            if (r.hasRam()) {
                for (RamExtent e : r.ramExtents()) {
                    extents.add(new RamFile.Extent(e.guestOffset(), e.fileOffset(), e.length()));
                }
            }
            return new CloneSource(vm, new RamFile(file, vm.spec().memoryBytes(), extents));
        }
    }

    /** The VM and the caller's sections; RAM copied into the snapshot when {@code withRam}, else left in the file. */
    private static Contents decode(SnapshotReader r, Path file, boolean withRam) throws IOException, SnapshotFormatException {
        Requirements req = r.requirements();
        if (!req.architecture().equals(ARCHITECTURE)) {
            throw new IllegalArgumentException(file + " is a snapshot of an " + req.architecture() + " guest; this VMM runs " + ARCHITECTURE);
        }
        VmSpec profile = spec(section(r, "vm.spec"));
        List<VcpuState> vcpus = new ArrayList<>();
        for (int i = 0; i < profile.vcpus(); i++) {
            VcpuState v = vcpu(section(r, "vcpu." + i));
            if (v.id() != i) {
                throw new IllegalArgumentException("section vcpu." + i + " holds vCPU " + v.id());
            }
            vcpus.add(v);
        }
        PartitionState partition = new PartitionState(parts(section(r, "partition")));
        TreeMap<Integer, VmSnapshot.DeviceState> devices = new TreeMap<>();
        Map<String, byte[]> extra = new LinkedHashMap<>();
        for (String name : r.sectionNames()) {
            Matcher m = DEVICE_SECTION.matcher(name);
            if (m.matches()) {
                devices.put(Integer.parseInt(m.group(1)), new VmSnapshot.DeviceState(m.group(2), r.section(name)));
            } else if (EXTRA_SECTION.matcher(name).matches() && !VM_SECTION_PREFIXES.contains(name.substring(0, name.indexOf('.')))) {
                extra.put(name, r.section(name));
            }
        }
        if (!devices.isEmpty() && (devices.firstKey() != 0 || devices.lastKey() != devices.size() - 1)) {
            throw new IllegalArgumentException("the device sections are not numbered 0.." + (devices.size() - 1) + ": " + devices.keySet());
        }
        List<VmSnapshot.SavedPortal> portals = readPortals(r);
        List<VmSnapshot.RamChunk> ram = new ArrayList<>();
        if (r.hasRam() && r.ramSize() != profile.memoryBytes()) {
            throw new IllegalArgumentException("the snapshot's RAM is " + r.ramSize() + " bytes; its spec says " + profile.memoryBytes());
        }
        if (r.hasRam() && withRam && !r.ramRanges().isEmpty()) {
            // the chunks are views of the one copy read from the file, which lives as long as they do; a file
            // that stores no page (a pre-copy move's state) allocates nothing (zeroing all of RAM took 0.5 s at 256 MiB)
            MemorySegment whole = Arena.ofAuto().allocate(r.ramSize(), 4096);
            r.copyRamInto(whole);
            for (RamRange range : r.ramRanges()) {
                for (long at = range.offset(); at < range.end(); at += VmSnapshot.RamChunk.MAX_CHUNK) {
                    long length = Math.min(VmSnapshot.RamChunk.MAX_CHUNK, range.end() - at);
                    ram.add(new VmSnapshot.RamChunk(at, whole.asSlice(at, length)));
                }
            }
        }
        return new Contents(new VmSnapshot(profile, req.backend(), ram, vcpus, partition, List.copyOf(devices.values()), portals), extra);
    }

    /**
     * Each mapped region as {@code portal.I} (its name, guest address and size) and its content as
     * {@code portal.I.K}, the K-th piece of {@link #PORTAL_PIECE} bytes, where that piece is not all
     * zero; a file-backed region as {@code portal.I} alone, in encoding 2 (its file's path and the
     * content's SHA-256 follow the size): the content stays in the file.
     */
    private static void writePortals(SnapshotWriter w, List<VmSnapshot.SavedPortal> portals) throws IOException {
        long held = portals.stream().mapToLong(p -> p instanceof VmSnapshot.PortalContent c ? c.size() : 0).sum();
        if (portals.size() > MAX_PORTALS || held > MAX_PORTALS_BYTES) {
            throw new IllegalArgumentException("a snapshot file takes at most " + MAX_PORTALS + " Portal regions of "
                    + Text.size(MAX_PORTALS_BYTES) + " in all");
        }
        MemorySegment zero = MemorySegment.ofArray(new byte[PORTAL_PIECE]);
        for (int i = 0; i < portals.size(); i++) {
            VmSnapshot.SavedPortal saved = portals.get(i);
            if (saved.size() > MAX_PORTAL_BYTES) {
                throw new IllegalArgumentException("Portal region '" + saved.name() + "' is larger than " + Text.size(MAX_PORTAL_BYTES));
            }
            if (saved instanceof VmSnapshot.PortalFile f) {
                byte[] path = f.file().toString().getBytes(StandardCharsets.UTF_8);
                if (path.length > MAX_PORTAL_PATH) {
                    throw new IllegalArgumentException("Portal region '" + f.name() + "': its file's path is longer than "
                            + MAX_PORTAL_PATH + " bytes");
                }
                w.section("portal." + i, encode(PORTAL_FILE_VERSION, out -> {
                    out.writeUTF(f.name());
                    out.writeLong(f.gpa());
                    out.writeLong(f.size());
                    out.writeShort(path.length);
                    out.write(path);
                    out.write(f.sha256());
                }));
                continue;
            }
            VmSnapshot.PortalContent p = (VmSnapshot.PortalContent) saved;
            w.section("portal." + i, encode(out -> {
                out.writeUTF(p.name());
                out.writeLong(p.gpa());
                out.writeLong(p.size());
            }));
            long size = p.size();
            for (long at = 0, k = 0; at < size; at += PORTAL_PIECE, k++) {
                MemorySegment piece = p.bytes().asSlice(at, Math.min(PORTAL_PIECE, size - at));
                if (piece.mismatch(zero.asSlice(0, piece.byteSize())) != -1) {
                    w.section("portal." + i + "." + k, piece.toArray(ValueLayout.JAVA_BYTE));
                }
            }
        }
    }

    /** Reads what {@link #writePortals} wrote: every count, size and piece checked before memory is taken. */
    private static List<VmSnapshot.SavedPortal> readPortals(SnapshotReader r) throws IOException, SnapshotFormatException {
        TreeMap<Integer, List<String>> pieces = new TreeMap<>();
        for (String name : r.sectionNames()) {
            Matcher m = PORTAL_SECTION.matcher(name);
            if (m.matches()) {
                List<String> region = pieces.computeIfAbsent(Integer.parseInt(m.group(1)), k -> new ArrayList<>());
                if (m.group(2) != null) {
                    region.add(name);
                }
            } else if (name.startsWith("portal.")) {
                throw new IllegalArgumentException("section " + name + " is not a Portal region's (portal.I or portal.I.K)");
            }
        }
        if (pieces.size() > MAX_PORTALS) {
            throw new IllegalArgumentException("the snapshot has " + pieces.size() + " Portal regions; at most " + MAX_PORTALS);
        }
        /** A region's head; {@code file} is null for one whose content follows in pieces. */
        record Head(String name, long gpa, long size, Path file, byte[] sha256) {
        }
        List<Head> heads = new ArrayList<>();
        long total = 0;
        for (int i = 0; i < pieces.size(); i++) {
            String head = "portal." + i;
            if (!r.hasSection(head)) {
                throw new IllegalArgumentException("the Portal sections are not numbered 0.." + (pieces.size() - 1) + ": " + pieces.keySet());
            }
            Head h = decode("section " + head, r.section(head), PORTAL_FILE_VERSION, (in, version) -> {
                String name = in.readUTF();
                long gpa = in.readLong();
                long size = in.readLong();
                if (version == 1) {
                    return new Head(name, gpa, size, null, null);
                }
                int length = in.readUnsignedShort();
                if (length == 0 || length > MAX_PORTAL_PATH) {
                    throw new IllegalArgumentException("section " + head + ": a file's path of " + length + " bytes; 1 to "
                            + MAX_PORTAL_PATH);
                }
                String path = new String(in.readNBytes(length), StandardCharsets.UTF_8);
                byte[] sha256 = in.readNBytes(32);
                if (sha256.length != 32) {
                    throw new EOFException();
                }
                return new Head(name, gpa, size, Path.of(path), sha256);
            });
            if (h.size() <= 0 || h.size() % 4096 != 0 || h.size() > MAX_PORTAL_BYTES) {
                throw new IllegalArgumentException("section " + head + ": region size " + h.size() + " is not a multiple of 4 KiB up to "
                        + MAX_PORTAL_BYTES);
            }
            if (h.file() != null) {
                if (!h.file().isAbsolute()) {
                    throw new IllegalArgumentException("section " + head + ": the file " + h.file() + " is not an absolute path");
                }
                if (!pieces.get(i).isEmpty()) {
                    throw new IllegalArgumentException("section " + head + " is a file-backed region's, which has no pieces: "
                            + pieces.get(i));
                }
            } else {
                total += h.size();
            }
            if (total > MAX_PORTALS_BYTES) {
                throw new IllegalArgumentException("the Portal regions hold more than " + MAX_PORTALS_BYTES + " bytes");
            }
            heads.add(h);
        }
        List<VmSnapshot.SavedPortal> portals = new ArrayList<>();
        for (int i = 0; i < heads.size(); i++) {
            Head h = heads.get(i);
            if (h.file() != null) {
                portals.add(new VmSnapshot.PortalFile(h.name(), h.gpa(), h.size(), h.file(), h.sha256()));
                continue;
            }
            long count = (h.size() + PORTAL_PIECE - 1) / PORTAL_PIECE;
            // the region's content lives as long as the snapshot's views of it
            MemorySegment bytes = Arena.ofAuto().allocate(h.size(), 4096);
            for (String name : pieces.get(i)) {
                long k = Long.parseLong(name.substring(("portal." + i).length() + 1));
                long at = k * PORTAL_PIECE;
                byte[] piece = r.section(name);
                if (k >= count || piece.length != Math.min(PORTAL_PIECE, h.size() - at)) {
                    throw new IllegalArgumentException("section " + name + " (" + piece.length + " bytes) is not a piece of the "
                            + h.size() + "-byte region '" + h.name() + "'");
                }
                bytes.asSlice(at, piece.length).copyFrom(MemorySegment.ofArray(piece));
            }
            portals.add(new VmSnapshot.PortalContent(h.name(), h.gpa(), bytes));
        }
        return portals;
    }

    private static byte[] section(SnapshotReader r, String name) throws IOException, SnapshotFormatException {
        if (!r.hasSection(name)) {
            throw new IllegalArgumentException("the snapshot has no section " + name);
        }
        return r.section(name);
    }

    // ---- encodings ----

    /** Writes a section's fields. */
    public interface Writing {
        void write(DataOutputStream out) throws IOException;
    }

    /** Reads a section's fields; an {@link EOFException} means the section is cut short. */
    public interface Reading<T> {
        T read(DataInputStream in) throws IOException;
    }

    /** Reads the fields of a section whose encoding has changed: {@code version} says which. */
    private interface VersionedReading<T> {
        T read(DataInputStream in, int version) throws IOException;
    }

    /** A section: this encoding's version byte, then what {@code body} writes. */
    public static byte[] encode(Writing body) {
        return encode(VERSION, body);
    }

    static byte[] encode(int version, Writing body) {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (DataOutputStream out = new DataOutputStream(bytes)) {
            out.writeByte(version);
            body.write(out);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return bytes.toByteArray();
    }

    /**
     * Reads a section written by {@link #encode}: refuses another version, a cut-short section and
     * bytes after its last field, saying so of {@code what}.
     */
    public static <T> T decode(String what, byte[] section, Reading<T> body) {
        return decode(what, section, VERSION, (in, version) -> body.read(in));
    }

    /** As {@link #decode(String, byte[], Reading)} for a section read in every version from 1 to {@code newest}. */
    private static <T> T decode(String what, byte[] section, int newest, VersionedReading<T> body) {
        DataInputStream in = new DataInputStream(new ByteArrayInputStream(section));
        try {
            int version = in.readUnsignedByte();
            if (version < 1 || version > newest) {
                throw new IllegalArgumentException(what + " has encoding version " + version + "; this VMM reads "
                        + (newest == 1 ? "1" : "1 to " + newest));
            }
            T value = body.read(in, version);
            if (in.available() != 0) {
                throw new IllegalArgumentException(what + " has " + in.available() + " bytes after its last field");
            }
            return value;
        } catch (EOFException e) {
            throw new IllegalArgumentException(what + " is truncated");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static int count(DataInputStream in, int max, String what) throws IOException {
        int n = in.readInt();
        if (n < 0 || n > max) {
            throw new IllegalArgumentException(what + ": " + n + " is not in 0.." + max);
        }
        return n;
    }

    /** A VM's spec as a section (its kind first); {@link #spec(byte[])} reads it back. */
    public static byte[] spec(VmSpec spec) {
        return switch (spec) {
            case VmProfile p -> micro(p);
            case LinuxProfile p -> linux(p);
        };
    }

    private static byte[] micro(VmProfile p) {
        if (p.input().length > SnapshotWriter.MAX_SECTION_BYTES / 2) {
            throw new IllegalArgumentException("a micro-VM with " + p.input().length + " bytes of input is not written to a file yet");
        }
        return encode(SPEC_VERSION, out -> {
            out.writeByte(KIND_MICRO);
            out.writeUTF(p.name());
            out.writeLong(p.memoryBytes());
            out.writeInt(p.vcpus());
            out.writeUTF(p.image().toString());
            out.writeInt(p.input().length);
            out.write(p.input());
            out.writeInt(p.outputCapacity());
            out.writeLong(p.arg());
            out.writeLong(p.timeout().toNanos());
            writeDevices(out, p.devices());
        });
    }

    private static byte[] linux(LinuxProfile p) {
        if (p.hyperv()) {
            throw new IllegalArgumentException("a VM that sees a Hyper-V partition is not written to a file yet");
        }
        return encode(SPEC_VERSION, out -> {
            out.writeByte(KIND_LINUX);
            out.writeUTF(p.name());
            out.writeUTF(p.kernel().toString());
            out.writeBoolean(p.initrd() != null);
            if (p.initrd() != null) {
                out.writeUTF(p.initrd().toString());
            }
            out.writeUTF(p.cmdline());
            out.writeInt(p.vcpus());
            out.writeLong(p.memoryBytes());
            out.writeLong(p.timeout().toNanos());
            writeDevices(out, p.devices());
            HostPlacement placement = p.placement();
            out.writeInt(placement.cpus().size());
            for (int cpu : placement.cpus()) {
                out.writeInt(cpu);
            }
            out.writeBoolean(placement.hugePages());
            out.writeBoolean(placement.overcommit());
            out.writeBoolean(p.acpi());
            // the manifest as set, or none: the one named as the VM is (the record's accessor hides which)
            boolean set = !p.equals(p.withManifest(null));
            out.writeBoolean(set);
            if (set) {
                out.writeUTF(p.manifest());
            }
        });
    }

    /**
     * Reads a section written by {@link #spec(VmSpec)}, or by a VMM of encoding 1 (a Linux VM
     * without ACPI, under the manifest named as it is); the spec's own constructor checks every field.
     */
    public static VmSpec spec(byte[] section) {
        return decode("section vm.spec", section, SPEC_VERSION, (in, version) -> {
            int kind = in.readUnsignedByte();
            return switch (kind) {
                case KIND_MICRO -> micro(in);
                case KIND_LINUX -> linux(in, version);
                default -> throw new IllegalArgumentException("section vm.spec is of VM kind " + kind
                        + "; this VMM reads micro-VMs (0) and Linux VMs (1)");
            };
        });
    }

    private static VmProfile micro(DataInputStream in) throws IOException {
        String name = in.readUTF();
        long memory = in.readLong();
        int vcpus = in.readInt();
        Path image = Path.of(in.readUTF());
        int inputLength = count(in, (int) SnapshotWriter.MAX_SECTION_BYTES, "vm.spec input length");
        byte[] input = in.readNBytes(inputLength);
        if (input.length != inputLength) {
            throw new EOFException();
        }
        int output = in.readInt();
        long arg = in.readLong();
        Duration timeout = Duration.ofNanos(in.readLong());
        return new VmProfile(name, memory, vcpus, image, input, output, arg, timeout, readDevices(in));
    }

    private static LinuxProfile linux(DataInputStream in, int version) throws IOException {
        String name = in.readUTF();
        Path kernel = Path.of(in.readUTF());
        Path initrd = in.readBoolean() ? Path.of(in.readUTF()) : null;
        String cmdline = in.readUTF();
        int vcpus = in.readInt();
        long memory = in.readLong();
        Duration timeout = Duration.ofNanos(in.readLong());
        List<DeviceConfig> devices = readDevices(in);
        int n = count(in, HostPlacement.MAX_CPU + 1, "vm.spec placement CPUs");
        List<Integer> cpus = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            cpus.add(in.readInt());
        }
        HostPlacement placement = new HostPlacement(cpus, in.readBoolean(), in.readBoolean());
        if (version == 1) {
            return new LinuxProfile(name, kernel, initrd, cmdline, vcpus, memory, timeout, devices, placement);
        }
        boolean acpi = in.readBoolean();
        String manifest = in.readBoolean() ? in.readUTF() : null;
        return new LinuxProfile(name, kernel, initrd, cmdline, vcpus, memory, timeout, devices, placement, acpi, manifest);
    }

    private static void writeDevices(DataOutputStream out, List<DeviceConfig> devices) throws IOException {
        out.writeInt(devices.size());
        for (DeviceConfig d : devices) {
            out.writeUTF(d.type());
            out.writeInt(d.parameters().size());
            for (Map.Entry<String, String> e : d.parameters().entrySet()) {
                out.writeUTF(e.getKey());
                out.writeUTF(e.getValue());
            }
        }
    }

    private static List<DeviceConfig> readDevices(DataInputStream in) throws IOException {
        int n = count(in, MAX_DEVICES, "vm.spec devices");
        List<DeviceConfig> devices = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            String type = in.readUTF();
            int params = count(in, MAX_PARAMETERS, "vm.spec device parameters");
            Map<String, String> map = new LinkedHashMap<>();
            for (int j = 0; j < params; j++) {
                map.put(in.readUTF(), in.readUTF());
            }
            devices.add(new DeviceConfig(type, map));
        }
        return devices;
    }

    static byte[] vcpu(VcpuState v) {
        return encode(out -> {
            out.writeInt(v.id());
            Registers g = v.registers();
            for (long r : new long[] {g.rax(), g.rbx(), g.rcx(), g.rdx(), g.rsi(), g.rdi(), g.rsp(), g.rbp(), g.r8(), g.r9(),
                    g.r10(), g.r11(), g.r12(), g.r13(), g.r14(), g.r15(), g.rip(), g.rflags()}) {
                out.writeLong(r);
            }
            SpecialRegisters s = v.special();
            for (Segment seg : new Segment[] {s.cs(), s.ds(), s.es(), s.fs(), s.gs(), s.ss(), s.tr(), s.ldt()}) {
                out.writeLong(seg.base());
                out.writeInt(seg.limit());
                out.writeInt(seg.selector());
                out.writeInt(seg.type());
                out.writeBoolean(seg.present());
                out.writeInt(seg.dpl());
                out.writeBoolean(seg.db());
                out.writeBoolean(seg.s());
                out.writeBoolean(seg.l());
                out.writeBoolean(seg.g());
                out.writeBoolean(seg.unusable());
            }
            for (DescriptorTable t : new DescriptorTable[] {s.gdt(), s.idt()}) {
                out.writeLong(t.base());
                out.writeInt(t.limit());
            }
            for (long r : new long[] {s.cr0(), s.cr2(), s.cr3(), s.cr4(), s.cr8(), s.efer(), s.apicBase()}) {
                out.writeLong(r);
            }
            writeParts(out, v.parts());
        });
    }

    static VcpuState vcpu(byte[] section) {
        return decode("a vcpu section", section, in -> {
            int id = in.readInt();
            long[] g = new long[18];
            for (int i = 0; i < g.length; i++) {
                g[i] = in.readLong();
            }
            Registers regs = new Registers(g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7], g[8], g[9], g[10], g[11], g[12],
                    g[13], g[14], g[15], g[16], g[17]);
            Segment[] seg = new Segment[8];
            for (int i = 0; i < seg.length; i++) {
                seg[i] = new Segment(in.readLong(), in.readInt(), in.readInt(), in.readInt(), in.readBoolean(), in.readInt(),
                        in.readBoolean(), in.readBoolean(), in.readBoolean(), in.readBoolean(), in.readBoolean());
            }
            DescriptorTable gdt = new DescriptorTable(in.readLong(), in.readInt());
            DescriptorTable idt = new DescriptorTable(in.readLong(), in.readInt());
            long[] c = new long[7];
            for (int i = 0; i < c.length; i++) {
                c[i] = in.readLong();
            }
            SpecialRegisters special = new SpecialRegisters(seg[0], seg[1], seg[2], seg[3], seg[4], seg[5], seg[6], seg[7],
                    gdt, idt, c[0], c[1], c[2], c[3], c[4], c[5], c[6]);
            return new VcpuState(id, regs, special, readParts(in));
        });
    }

    static byte[] parts(List<StatePart> parts) {
        return encode(out -> writeParts(out, parts));
    }

    static List<StatePart> parts(byte[] section) {
        return decode("section partition", section, VmSnapshotFile::readParts);
    }

    private static void writeParts(DataOutputStream out, List<StatePart> parts) throws IOException {
        out.writeInt(parts.size());
        for (StatePart p : parts) {
            out.writeUTF(p.name());
            out.writeInt(p.size());
            out.write(p.bytes());
        }
    }

    private static List<StatePart> readParts(DataInputStream in) throws IOException {
        int n = count(in, MAX_PARTS, "state parts");
        List<StatePart> parts = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            String name = in.readUTF();
            int size = count(in, MAX_PART_BYTES, "state part '" + name + "' length");
            byte[] bytes = in.readNBytes(size);
            if (bytes.length != size) {
                throw new EOFException();
            }
            parts.add(new StatePart(name, bytes));
        }
        return parts;
    }
}
