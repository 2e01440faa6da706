package org.nxia.device.virtio.internal.queue;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;
import org.nxia.vmm.spi.GuestMemory;

/** Replays every input in {@code src/test/resources/virtqueue-corpus/} (format in its README). */
class VirtqueueCorpusTest {

    @TestFactory
    Stream<DynamicTest> replaysEveryCorpusFile() throws IOException, URISyntaxException {
        URL url = getClass().getClassLoader().getResource("virtqueue-corpus");
        assertNotNull(url, "virtqueue-corpus is missing from the test resources");
        Path directory = Path.of(url.toURI());
        List<Path> files;
        try (Stream<Path> listing = Files.list(directory)) {
            files = listing.filter(p -> p.getFileName().toString().endsWith(".vq")).sorted().toList();
        }
        assertFalse(files.isEmpty(), "the corpus has no .vq files");
        return files.stream().map(file -> DynamicTest.dynamicTest(file.getFileName().toString(), () -> replay(file)));
    }

    private static void replay(Path file) throws IOException {
        List<String[]> lines = new ArrayList<>();
        for (String raw : Files.readAllLines(file)) {
            String line = raw.strip();
            int hash = line.indexOf('#');
            if (hash >= 0 && !line.startsWith("expect")) {
                line = line.substring(0, hash).strip();
            }
            if (!line.isEmpty()) {
                lines.add(line.split("\\s+"));
            }
        }
        QueueFuzzer fuzzer = null;
        int memoryBytes = 65536;
        GuestMemory memory = null;
        SplitQueue queue = null;
        int size = 0;
        long availRing = 0;
        String queueError = null;
        for (String[] words : lines) {
            switch (words[0]) {
                case "seed" -> {
                    if (fuzzer == null) {
                        fuzzer = new QueueFuzzer();
                    }
                    fuzzer.run(Long.parseLong(words[1]));
                }
                case "memory" -> memoryBytes = (int) number(words[1]);
                case "queue" -> {
                    memory = GuestMemory.of(0, MemorySegment.ofArray(new byte[memoryBytes]));
                    long desc = 0;
                    long used = 0;
                    long features = 0;
                    int lastAvail = -1;
                    int usedIdx = 0;
                    for (int i = 1; i < words.length; i++) {
                        String[] kv = words[i].split("=", 2);
                        switch (kv[0]) {
                            case "size" -> size = (int) number(kv[1]);
                            case "desc" -> desc = number(kv[1]);
                            case "avail" -> availRing = number(kv[1]);
                            case "used" -> used = number(kv[1]);
                            case "features" -> {
                                for (String f : kv[1].split(",")) {
                                    features |= switch (f) {
                                        case "indirect" -> SplitQueue.F_INDIRECT_DESC;
                                        case "event_idx" -> SplitQueue.F_EVENT_IDX;
                                        default -> throw new IllegalArgumentException("unknown feature " + f);
                                    };
                                }
                            }
                            case "last_avail" -> lastAvail = (int) number(kv[1]);
                            case "used_idx" -> usedIdx = (int) number(kv[1]);
                            default -> throw new IllegalArgumentException("unknown queue key " + kv[0]);
                        }
                    }
                    queue = new SplitQueue(memory, SplitQueue.MAX_SIZE);
                    try {
                        if (lastAvail >= 0) {
                            queue.restore(new SplitQueueState(size, desc, availRing, used, features, lastAvail, usedIdx, false));
                        } else {
                            queue.configure(size, desc, availRing, used);
                            queue.negotiate(features);
                            queue.activate();
                        }
                    } catch (VirtqueueException e) {
                        queueError = e.getMessage();
                    }
                }
                case "desc" -> writeDescriptor(memory, 0x1000 + 16 * number(words[1]), words);
                case "desc@" -> writeDescriptor(memory, number(words[1]), words);
                case "avail" -> {
                    for (int i = 2; i < words.length; i++) {
                        memory.writeShort(availRing + 4 + 2L * (i - 2), (short) number(words[i]));
                    }
                    memory.writeShort(availRing + 2, (short) number(words[1]));
                }
                case "expect" -> expect(file, words, queue, memory, size, queueError);
                default -> throw new IllegalArgumentException(file + ": unknown directive " + words[0]);
            }
        }
    }

    private static void expect(Path file, String[] words, SplitQueue queue, GuestMemory memory, int size, String queueError) {
        String text = words.length > 2 ? String.join(" ", List.of(words).subList(2, words.length)) : "";
        switch (words[1]) {
            case "refused" -> {
                assertNotNull(queueError, file + ": activation should have been refused");
                assertTrue(queueError.contains(text), file + ": '" + queueError + "' should contain '" + text + "'");
            }
            case "chains" -> {
                assertNull(queueError, file + ": activation refused");
                int expected = Integer.parseInt(words[2]);
                for (int i = 0; i < expected; i++) {
                    DescriptorChain chain = queue.next();
                    assertNotNull(chain, file + ": chain " + i + " missing");
                    checkChain(memory, chain, size);
                }
                assertNull(queue.next(), file + ": more chains than expected");
            }
            case "error" -> {
                assertNull(queueError, file + ": activation refused");
                VirtqueueException e = assertThrows(VirtqueueException.class, () -> {
                    for (int i = 0; i <= size; i++) {
                        DescriptorChain chain = queue.next();
                        if (chain == null) {
                            return;
                        }
                        checkChain(memory, chain, size);
                    }
                });
                assertTrue(e.getMessage().contains(text), file + ": '" + e.getMessage() + "' should contain '" + text + "'");
                assertTrue(queue.isBroken());
            }
            default -> fail(file + ": unknown expectation " + words[1]);
        }
    }

    private static void checkChain(GuestMemory memory, DescriptorChain chain, int size) {
        assertTrue(chain.count() <= size);
        for (int i = 0; i < chain.count(); i++) {
            assertTrue(memory.contains(chain.address(i), chain.length(i)));
        }
    }

    private static void writeDescriptor(GuestMemory memory, long at, String[] words) {
        assertEquals(6, words.length, "desc needs <where> <addr> <len> <flags> <next>");
        memory.writeLong(at, number(words[2]));
        memory.writeInt(at + 8, (int) number(words[3]));
        memory.writeShort(at + 12, (short) flags(words[4]));
        memory.writeShort(at + 14, (short) number(words[5]));
    }

    private static long flags(String word) {
        if (Character.isDigit(word.charAt(0))) {
            return number(word);
        }
        long flags = 0;
        for (String name : word.split("\\|")) {
            flags |= switch (name) {
                case "NEXT" -> SplitQueue.VIRTQ_DESC_F_NEXT;
                case "WRITE" -> SplitQueue.VIRTQ_DESC_F_WRITE;
                case "INDIRECT" -> SplitQueue.VIRTQ_DESC_F_INDIRECT;
                default -> throw new IllegalArgumentException("unknown flag " + name);
            };
        }
        return flags;
    }

    private static long number(String word) {
        if (word.startsWith("0x")) {
            return Long.parseUnsignedLong(word.substring(2), 16);
        }
        return Long.parseLong(word);
    }
}
