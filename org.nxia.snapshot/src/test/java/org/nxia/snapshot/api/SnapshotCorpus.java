package org.nxia.snapshot.api;

import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Random;

import javax.crypto.SecretKey;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;

/**
 * The fuzzer's corpus (src/test/resources/snapshot-corpus): small valid snapshots, plain and
 * encrypted (chunk size 256, so that sections span chunks), with and without RAM. Regenerate
 * with {@code -Dnxia.snapshot.corpus.write=DIR -Dtest=SnapshotCorpus}; the encrypted ones use
 * {@link #KEY}, a test key.
 */
public class SnapshotCorpus {

    static final SecretKey KEY = SnapshotKeys.of(HexFormat.of().parseHex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"));
    static final String[] FILES = {"empty.nxsnap", "sections.nxsnap", "ram.nxsnap", "enc-empty.nxsnap", "enc-sections.nxsnap",
        "enc-ram.nxsnap"};
    static final long RAM = 64 << 10;

    record Entry(String name, byte[] bytes, SecretKey key) {
    }

    static List<Entry> load() throws IOException {
        List<Entry> corpus = new ArrayList<>();
        for (String name : FILES) {
            try (InputStream in = SnapshotCorpus.class.getResourceAsStream("/snapshot-corpus/" + name)) {
                if (in == null) {
                    throw new IOException("corpus file " + name + " is missing");
                }
                corpus.add(new Entry(name, in.readAllBytes(), name.startsWith("enc-") ? KEY : null));
            }
        }
        return corpus;
    }

    static void write(Path dir) throws IOException {
        Files.createDirectories(dir);
        for (String name : FILES) {
            Path file = dir.resolve(name);
            Files.deleteIfExists(file);
            SecretKey key = name.startsWith("enc-") ? KEY : null;
            Random random = new Random(name.hashCode());
            Requirements requirements = new Requirements("x86_64", "kvm", new byte[] {0x47, 0x65, 0x6e, 0x75}, new byte[] {1});
            try (Arena arena = Arena.ofConfined();
                SnapshotWriter w = key == null ? SnapshotWriter.create(file, requirements)
                    : SnapshotWriter.createEncrypted(file, requirements, key, 256)) {
                if (!name.contains("empty")) {
                    byte[] vcpu = new byte[600];
                    random.nextBytes(vcpu);
                    w.section("vm.spec", "micro-vm ram=64k".getBytes());
                    w.section("vcpu.0", vcpu);
                    w.section("device.3.virtio-vsock", new byte[] {1, 0, 0, 0});
                    w.section("empty", new byte[0]);
                }
                if (name.contains("ram")) {
                    MemorySegment ram = arena.allocate(RAM, SnapshotWriter.PAGE_SIZE);
                    SnapshotFileTest.touch(ram, random, 1, 9);
                    w.ram(ram, RamPages.all(), SaveProgress.NONE);
                    w.section("partition", new byte[] {2});
                }
                w.finish();
            }
        }
    }

    @Test
    @EnabledIfSystemProperty(named = "nxia.snapshot.corpus.write", matches = ".+")
    void writeTheCorpus() throws IOException {
        write(Path.of(System.getProperty("nxia.snapshot.corpus.write")));
    }
}
