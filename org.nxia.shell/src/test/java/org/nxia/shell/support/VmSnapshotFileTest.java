package org.nxia.shell.support;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import javax.crypto.SecretKey;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nxia.snapshot.api.Requirements;
import org.nxia.snapshot.api.SaveProgress;
import org.nxia.snapshot.api.SnapshotKeys;
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
import org.nxia.vmm.api.device.DeviceConfig;

/** A VmSnapshot through a snapshot file and back, and the sections it refuses. */
class VmSnapshotFileTest {

    @TempDir
    Path dir;

    private static VmSnapshot snapshot() {
        VmProfile profile = VmProfile.of(Path.of("/images/counter.elf")).withMemory(4 * VmProfile.MIB).withArg(99)
                .withInput(new byte[] {5, 6}).withTimeout(Duration.ofSeconds(7))
                .withDevices(List.of(new DeviceConfig("virtio-rng", Map.of())));
        Segment code = new Segment(0, 0xfffff, 0x10, 11, true, 0, false, true, true, true, false);
        Segment data = new Segment(0, 0xfffff, 0x18, 3, true, 0, true, true, false, true, false);
        SpecialRegisters special = new SpecialRegisters(code, data, data, data, data, data, code, data,
                new DescriptorTable(0x3000, 0x27), new DescriptorTable(0, 0), 0x80050033L, 7, 0x9000, 0x20, 0, 0xd01, 0xfee00900L);
        Registers regs = new Registers(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 0x100123, 0x202);
        VcpuState vcpu = new VcpuState(0, regs, special, List.of(new StatePart("xsave", filled(4096, 3)), new StatePart("msrs", filled(32, 9))));
        byte[] page = filled(4096, 0x5a);
        List<VmSnapshot.RamChunk> ram = List.of(new VmSnapshot.RamChunk(0x1000, MemorySegment.ofArray(page)),
                new VmSnapshot.RamChunk(0x100000, MemorySegment.ofArray(filled(8192, 0x11))));
        return new VmSnapshot(profile, "kvm", ram, List.of(vcpu), new PartitionState(List.of(new StatePart("clock", filled(48, 1)))),
                List.of(new VmSnapshot.DeviceState("virtio-rng", new byte[] {1, 2, 3})));
    }

    private static byte[] filled(int n, int value) {
        byte[] b = new byte[n];
        Arrays.fill(b, (byte) value);
        return b;
    }

    private static void assertSame(VmSnapshot a, VmSnapshot b) {
        assertEquals(a.spec().memoryBytes(), b.spec().memoryBytes());
        assertEquals(((VmProfile) a.spec()).arg(), ((VmProfile) b.spec()).arg());
        assertArrayEquals(((VmProfile) a.spec()).input(), ((VmProfile) b.spec()).input());
        assertEquals(((VmProfile) a.spec()).devices(), ((VmProfile) b.spec()).devices());
        assertEquals(((VmProfile) a.spec()).timeout(), ((VmProfile) b.spec()).timeout());
        assertEquals(a.spec().name(), b.spec().name());
        assertEquals(a.backend(), b.backend());
        assertEquals(a.vcpus(), b.vcpus());
        assertEquals(a.partition(), b.partition());
        assertEquals(a.devices(), b.devices());
        assertEquals(a.ram().size(), b.ram().size());
        for (int i = 0; i < a.ram().size(); i++) {
            assertEquals(a.ram().get(i).gpa(), b.ram().get(i).gpa());
            assertEquals(-1, a.ram().get(i).bytes().mismatch(b.ram().get(i).bytes()));
        }
    }

    @Test
    void aSnapshotComesBackWholeFromAPlainFile() throws Exception {
        VmSnapshot s = snapshot();
        Path file = dir.resolve("vm.nxsnap");
        VmSnapshotFile.write(s, file, null);
        assertSame(s, VmSnapshotFile.read(file, null));
    }

    @Test
    void andFromAnEncryptedOne() throws Exception {
        VmSnapshot s = snapshot();
        SecretKey key = SnapshotKeys.generate();
        Path file = dir.resolve("vm.nxsnap");
        VmSnapshotFile.write(s, file, key);
        assertSame(s, VmSnapshotFile.read(file, key));
        assertThrows(Exception.class, () -> VmSnapshotFile.read(file, SnapshotKeys.generate()), "another key");
    }

    @Test
    void aPlainFileGivesAClonesStateWithoutRamAndWhereTheFileHoldsEachPageOfIt() throws Exception {
        VmSnapshot s = snapshot();
        Path file = dir.resolve("vm.nxsnap");
        VmSnapshotFile.write(s, file, null);
        VmSnapshotFile.CloneSource clone = VmSnapshotFile.readForClone(file);
        assertEquals(List.of(), clone.vm().ram(), "a clone's RAM stays in the file");
        assertEquals(s.vcpus(), clone.vm().vcpus());
        assertEquals(s.devices(), clone.vm().devices());
        assertEquals(s.spec().memoryBytes(), clone.ram().ramBytes());
        assertEquals(file, clone.ram().file());
        byte[] bytes = Files.readAllBytes(file);
        assertEquals(s.ram().size(), clone.ram().extents().size());
        for (int i = 0; i < s.ram().size(); i++) {
            RamFile.Extent e = clone.ram().extents().get(i);
            VmSnapshot.RamChunk c = s.ram().get(i);
            assertEquals(c.gpa(), e.gpa());
            assertEquals(0, e.fileOffset() % 4096, "page-aligned in the file: it can be mapped");
            assertEquals(-1, c.bytes().mismatch(MemorySegment.ofArray(bytes).asSlice(e.fileOffset(), e.length())),
                    "the file holds the chunk's bytes at the extent's offset");
        }
    }

    @Test
    void anEncryptedFileIsNotClonedButRestoredByCopy() throws Exception {
        Path file = dir.resolve("vm.nxsnap");
        VmSnapshotFile.write(snapshot(), file, SnapshotKeys.generate());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> VmSnapshotFile.readForClone(file));
        assertTrue(e.getMessage().contains("an encrypted snapshot is restored by copy: vm:restore"), e.getMessage());
    }

    @Test
    void sectionsThatAreCutOrLongOrOfAnotherVersionAreRefused() {
        byte[] vcpu = VmSnapshotFile.vcpu(snapshot().vcpus().getFirst());
        assertEquals("a vcpu section is truncated",
                assertThrows(IllegalArgumentException.class, () -> VmSnapshotFile.vcpu(Arrays.copyOf(vcpu, vcpu.length - 1))).getMessage());
        assertEquals("a vcpu section has 1 bytes after its last field",
                assertThrows(IllegalArgumentException.class, () -> VmSnapshotFile.vcpu(Arrays.copyOf(vcpu, vcpu.length + 1))).getMessage());
        byte[] other = vcpu.clone();
        other[0] = 2;
        assertTrue(assertThrows(IllegalArgumentException.class, () -> VmSnapshotFile.vcpu(other)).getMessage().contains("version 2"));
        byte[] parts = VmSnapshotFile.parts(List.of(new StatePart("clock", new byte[8])));
        parts[4] = 0x7f;   // part count: far more than any state has
        assertThrows(IllegalArgumentException.class, () -> VmSnapshotFile.parts(parts));
    }

    private static LinuxProfile linux() {
        return new LinuxProfile("sysvm", Path.of("/cache/bzImage"), Path.of("/tmp/x/initramfs"), "quiet loglevel=3", 1,
                128 * VmProfile.MIB, Duration.ofMinutes(9), List.of(DeviceConfig.parse("virtio-blk:path=/cache/root.ext4,ro=true"),
                DeviceConfig.parse("virtio-vsock:cid=3,uds=/tmp/x/vsock")), new HostPlacement(List.of(1, 0), true, false), true,
                "system");
    }

    @Test
    void aLinuxVmsSpecComesBackWithItsPlacementAndTheCallersSectionsBesideIt() throws Exception {
        VmSnapshot micro = snapshot();
        VmSnapshot s = new VmSnapshot(linux(), "kvm", micro.ram(), micro.vcpus(), micro.partition(), micro.devices());
        Path file = dir.resolve("sysvm.nxsnap");
        SecretKey key = SnapshotKeys.generate();
        VmSnapshotFile.write(s, file, key, Map.of("systemvm.agent", new byte[] {7, 7, 7}), SaveProgress.NONE);
        VmSnapshotFile.Contents c = VmSnapshotFile.readWhole(file, key);
        assertEquals(linux(), c.vm().spec());
        assertEquals(List.of("systemvm.agent"), List.copyOf(c.extra().keySet()));
        assertArrayEquals(new byte[] {7, 7, 7}, c.extra().get("systemvm.agent"));
        assertEquals(s.devices(), c.vm().devices());
        assertEquals(-1, s.ram().get(1).bytes().mismatch(c.vm().ram().get(1).bytes()));
        // a Linux VM without an initramfs, and the plain read of the same file
        LinuxProfile bare = new LinuxProfile("k", Path.of("/k"), null, "", 1, 64 * VmProfile.MIB, Duration.ofSeconds(1), List.of());
        assertEquals(bare, VmSnapshotFile.spec(VmSnapshotFile.spec(bare)));
        // ACPI and the manifest come back as set: not the defaults (no ACPI, the manifest named as the VM)
        LinuxProfile back = (LinuxProfile) VmSnapshotFile.spec(VmSnapshotFile.spec(linux()));
        assertTrue(back.acpi());
        assertEquals("system", back.manifest());
        assertEquals(bare.withManifest("k"), VmSnapshotFile.spec(VmSnapshotFile.spec(bare.withManifest("k"))));
        assertEquals(linux(), VmSnapshotFile.read(file, key).spec());
        IllegalArgumentException hv = assertThrows(IllegalArgumentException.class, () -> VmSnapshotFile.spec(bare.withHyperv(true)));
        assertTrue(hv.getMessage().contains("Hyper-V"), hv.getMessage());
    }

    @Test
    void theCallersSectionsCannotTakeTheVmsNamesAndAnUnknownKindIsRefused() {
        VmSnapshot s = snapshot();
        for (String name : List.of("vm.spec", "vcpu.0", "device.0.rng", "partition.x", "Upper.case", "nodot")) {
            assertThrows(IllegalArgumentException.class,
                    () -> VmSnapshotFile.write(s, dir.resolve(name), null, Map.of(name, new byte[1]), SaveProgress.NONE), name);
        }
        byte[] spec = VmSnapshotFile.spec(linux());
        spec[1] = 9;
        assertTrue(assertThrows(IllegalArgumentException.class, () -> VmSnapshotFile.spec(spec)).getMessage().contains("VM kind 9"));
        byte[] placement = VmSnapshotFile.spec(linux());
        // the host CPU list: its count, two CPUs, two booleans, then ACPI, "manifest set" and the name end the section
        int at = placement.length - (2 + "system".length()) - 1 - 1 - 2 - 8 - 4;
        placement[at] = 0x7f;
        assertThrows(IllegalArgumentException.class, () -> VmSnapshotFile.spec(placement));
    }

    @Test
    void aSpecOfTheFirstEncodingReadsAsWithoutAcpiUnderItsOwnNameAndANewerOneIsRefused() {
        LinuxProfile acpi = linux().withManifest(null);
        byte[] now = VmSnapshotFile.spec(acpi);
        assertEquals(2, now[0]);
        // encoding 1 ended after the placement: no ACPI flag, no manifest
        byte[] first = java.util.Arrays.copyOf(now, now.length - 2);
        first[0] = 1;
        LinuxProfile old = (LinuxProfile) VmSnapshotFile.spec(first);
        assertEquals(acpi.withAcpi(false), old);
        assertEquals("sysvm", old.manifest());
        now[0] = 3;
        assertTrue(assertThrows(IllegalArgumentException.class, () -> VmSnapshotFile.spec(now)).getMessage()
                .contains("encoding version 3; this VMM reads 1 to 2"));
    }

    /** A micro-VM's snapshot with one Portal region of 16 MiB + 4 KiB: marks in the first and last pieces, the middle all zero. */
    private static VmSnapshot withPortal() {
        VmSnapshot s = snapshot();
        MemorySegment region = MemorySegment.ofArray(new byte[(16 << 20) + 4096]);
        region.set(ValueLayout.JAVA_BYTE, 5, (byte) 0x7e);
        region.set(ValueLayout.JAVA_BYTE, (16 << 20) + 4095, (byte) 0x42);
        return new VmSnapshot(s.spec(), s.backend(), s.ram(), s.vcpus(), s.partition(), s.devices(),
                List.of(new VmSnapshot.PortalContent("gemini", 0xc000_0000L, region)));
    }

    @Test
    void aPortalRegionComesBackWithItsContentAndItsZeroPiecesAreLeftOut() throws Exception {
        VmSnapshot s = withPortal();
        Path file = dir.resolve("portal.nxsnap");
        VmSnapshotFile.write(s, file, null);
        try (SnapshotReader r = SnapshotReader.open(file)) {
            assertEquals(List.of("portal.0", "portal.0.0", "portal.0.2"),
                    r.sectionNames().stream().filter(n -> n.startsWith("portal")).sorted().toList());
        }
        for (VmSnapshot back : List.of(VmSnapshotFile.read(file, null), VmSnapshotFile.readForClone(file).vm())) {
            VmSnapshot.PortalContent p = (VmSnapshot.PortalContent) back.portals().getFirst();
            assertEquals("gemini", p.name());
            assertEquals(0xc000_0000L, p.gpa());
            assertEquals(-1, p.bytes().mismatch(content(s)));
        }
        SecretKey key = SnapshotKeys.generate();
        Path encrypted = dir.resolve("portal-encrypted.nxsnap");
        VmSnapshotFile.write(s, encrypted, key);
        assertEquals(-1, content(VmSnapshotFile.read(encrypted, key)).mismatch(content(s)));
    }

    private static MemorySegment content(VmSnapshot s) {
        return ((VmSnapshot.PortalContent) s.portals().getFirst()).bytes();
    }

    /** A file-backed region is its {@code portal.I} section alone: the path and the SHA-256 come back, no content. */
    @Test
    void aFileBackedRegionIsWrittenByReference() throws Exception {
        VmSnapshot s = snapshot();
        byte[] sha = filled(32, 9);
        VmSnapshot.PortalFile saved = new VmSnapshot.PortalFile("data", 0xc000_0000L, 256L << 20, Path.of("/srv/regions/data é.img"), sha);
        VmSnapshot withFile = new VmSnapshot(s.spec(), s.backend(), s.ram(), s.vcpus(), s.partition(), s.devices(),
                List.of(saved, new VmSnapshot.PortalContent("small", 0xd000_0000L, MemorySegment.ofArray(filled(4096, 1)))));
        Path file = dir.resolve("by-reference.nxsnap");
        VmSnapshotFile.write(withFile, file, null);
        assertTrue(Files.size(file) < 1 << 20, "256 MiB of region left in its file: " + Files.size(file) + " bytes");
        try (SnapshotReader r = SnapshotReader.open(file)) {
            assertEquals(List.of("portal.0", "portal.1", "portal.1.0"),
                    r.sectionNames().stream().filter(n -> n.startsWith("portal")).sorted().toList());
        }
        VmSnapshot back = VmSnapshotFile.read(file, null);
        assertEquals(saved, back.portals().getFirst());
        assertEquals(1, content(new VmSnapshot(s.spec(), s.backend(), s.ram(), s.vcpus(), s.partition(), s.devices(),
                List.of(back.portals().get(1)))).get(ValueLayout.JAVA_BYTE, 4095));
        assertEquals(4096, back.portalBytes(), "only the anonymous region's bytes are held");
    }

    /** A file's path of exactly 4096 bytes (PATH_MAX) is written and read back; one byte more is refused on the way out. */
    @Test
    void aFileBackedRegionsPathMayBeAsLongAsPathMax() throws Exception {
        VmSnapshot s = snapshot();
        Path longest = Path.of("/" + "a".repeat(4095));
        VmSnapshot.PortalFile saved = new VmSnapshot.PortalFile("data", 0xc000_0000L, 4096, longest, filled(32, 3));
        Path file = dir.resolve("longest.nxsnap");
        VmSnapshotFile.write(new VmSnapshot(s.spec(), s.backend(), s.ram(), s.vcpus(), s.partition(), s.devices(), List.of(saved)), file, null);
        assertEquals(saved, VmSnapshotFile.read(file, null).portals().getFirst());

        VmSnapshot.PortalFile tooLong = new VmSnapshot.PortalFile("data", 0xc000_0000L, 4096, Path.of("/" + "a".repeat(4096)), filled(32, 3));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> VmSnapshotFile.write(
                new VmSnapshot(s.spec(), s.backend(), s.ram(), s.vcpus(), s.partition(), s.devices(), List.of(tooLong)),
                dir.resolve("too-long.nxsnap"), null));
        assertTrue(e.getMessage().contains("its file's path is longer than 4096 bytes"), e.getMessage());
    }

    private static byte[] fileHead(String name, long gpa, long size, byte[] path, int shaBytes) {
        return VmSnapshotFile.encode(2, out -> {
            out.writeUTF(name);
            out.writeLong(gpa);
            out.writeLong(size);
            out.writeShort(path.length);
            out.write(path);
            out.write(new byte[shaBytes]);
        });
    }

    @Test
    void aFileBackedRegionsSectionIsCheckedLikeAnyOther() throws Exception {
        long gpa = 0xc000_0000L;
        byte[] path = "/srv/r.img".getBytes(java.nio.charset.StandardCharsets.UTF_8);
        Map<String, Map<String, byte[]>> bad = new LinkedHashMap<>();
        bad.put("a relative path", Map.of("portal.0", fileHead("p", gpa, 4096, "r.img".getBytes(), 32)));
        bad.put("an empty path", Map.of("portal.0", fileHead("p", gpa, 4096, new byte[0], 32)));
        bad.put("a path longer than PATH_MAX", Map.of("portal.0", fileHead("p", gpa, 4096, filled(4097, '/'), 32)));
        bad.put("a digest cut short", Map.of("portal.0", fileHead("p", gpa, 4096, path, 31)));
        bad.put("bytes after the digest", Map.of("portal.0", fileHead("p", gpa, 4096, path, 33)));
        bad.put("pieces of content too", Map.of("portal.0", fileHead("p", gpa, 4096, path, 32), "portal.0.0", filled(4096, 1)));
        bad.put("a size not of whole pages", Map.of("portal.0", fileHead("p", gpa, 4000, path, 32)));
        bad.put("an encoding after 2", Map.of("portal.0", withVersion(fileHead("p", gpa, 4096, path, 32), 3)));
        for (Map.Entry<String, Map<String, byte[]>> e : bad.entrySet()) {
            Path file = crafted(e.getKey().replace(' ', '-') + ".nxsnap", e.getValue());
            IllegalArgumentException refused = assertThrows(IllegalArgumentException.class, () -> VmSnapshotFile.read(file, null), e.getKey());
            assertTrue(refused.getMessage().contains("portal.0"), e.getKey() + ": " + refused.getMessage());
        }
        VmSnapshot ok = VmSnapshotFile.read(crafted("file-ok.nxsnap", Map.of("portal.0", fileHead("p", gpa, 4096, path, 32))), null);
        assertEquals(new VmSnapshot.PortalFile("p", gpa, 4096, Path.of("/srv/r.img"), new byte[32]), ok.portals().getFirst(),
                "the crafted file is sound but for each fault");
    }

    private static byte[] withVersion(byte[] section, int version) {
        section[0] = (byte) version;
        return section;
    }

    /** A file of the VM's own sections and {@code portal}'s, written as a hostile peer may. */
    private Path crafted(String file, Map<String, byte[]> portal) throws Exception {
        VmSnapshot s = snapshot();
        Path path = dir.resolve(file);
        try (SnapshotWriter w = SnapshotWriter.create(path,
                new Requirements(VmSnapshotFile.ARCHITECTURE, "kvm", new byte[0], new byte[0]))) {
            w.section("vm.spec", VmSnapshotFile.spec(s.spec()));
            w.section("vcpu.0", VmSnapshotFile.vcpu(s.vcpus().getFirst()));
            w.section("partition", VmSnapshotFile.parts(s.partition().parts()));
            w.section("device.0.virtio-rng", new byte[] {1, 2, 3});
            for (Map.Entry<String, byte[]> e : portal.entrySet()) {
                w.section(e.getKey(), e.getValue());
            }
            w.finish();
        }
        return path;
    }

    private static byte[] head(String name, long gpa, long size) {
        return VmSnapshotFile.encode(out -> {
            out.writeUTF(name);
            out.writeLong(gpa);
            out.writeLong(size);
        });
    }

    @Test
    void portalSectionsThatDoNotAddUpAreRefusedBeforeTheirMemoryIsTaken() throws Exception {
        long gpa = 0xc000_0000L;
        byte[] page = filled(4096, 1);
        Map<String, Map<String, byte[]>> bad = new LinkedHashMap<>();
        bad.put("a piece of the wrong length", Map.of("portal.0", head("p", gpa, 8192), "portal.0.0", page));
        bad.put("a piece past the end", Map.of("portal.0", head("p", gpa, 4096), "portal.0.1", page));
        bad.put("a size not of whole pages", Map.of("portal.0", head("p", gpa, 4000)));
        bad.put("a region larger than any", Map.of("portal.0", head("p", gpa, 512L << 20)));
        bad.put("a gap in the numbering", Map.of("portal.1", head("p", gpa, 4096)));
        bad.put("a number with a leading zero", Map.of("portal.0", head("p", gpa, 4096), "portal.00", head("q", gpa + 4096, 4096)));
        bad.put("a region in RAM", Map.of("portal.0", head("p", 0x1000, 4096)));
        bad.put("a region cut short", Map.of("portal.0", Arrays.copyOf(head("p", gpa, 4096), 9)));
        Map<String, byte[]> many = new LinkedHashMap<>();
        for (int i = 0; i < 5; i++) {
            many.put("portal." + i, head("p" + i, gpa + i * (256L << 20), 256L << 20));
        }
        bad.put("more than 1 GiB of regions", many);
        for (Map.Entry<String, Map<String, byte[]>> e : bad.entrySet()) {
            Path file = crafted(e.getKey().replace(' ', '-') + ".nxsnap", e.getValue());
            assertThrows(IllegalArgumentException.class, () -> VmSnapshotFile.read(file, null), e.getKey());
        }
        VmSnapshot ok = VmSnapshotFile.read(crafted("ok.nxsnap", Map.of("portal.0", head("p", gpa, 8192), "portal.0.0", filled(8192, 3))),
                null);
        assertEquals(3, content(ok).get(ValueLayout.JAVA_BYTE, 8191), "the crafted file is sound but for each fault");
    }

    @Test
    void aLongSaveSaysHowFarItIsOnceAQuarterAndAShortOneSaysNothing() {
        java.io.ByteArrayOutputStream bytes = new java.io.ByteArrayOutputStream();
        java.io.PrintStream out = new java.io.PrintStream(bytes, true, java.nio.charset.StandardCharsets.UTF_8);
        SaveProgress small = VmSnapshotFile.progressLines(out);
        small.progress(30L << 20, 32L << 20);
        assertEquals("", bytes.toString());
        SaveProgress big = VmSnapshotFile.progressLines(out);
        long total = 256L << 20;
        for (long done = 0; done <= total; done += 16L << 20) {
            big.progress(done, total);
        }
        String lines = bytes.toString(java.nio.charset.StandardCharsets.UTF_8);
        assertEquals(3, lines.lines().count(), lines);
        assertTrue(lines.startsWith("  RAM saved: 64"), lines);
    }
}
