package org.nxia.device.virtio.internal.mmio;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;

import java.net.URL;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;
import org.nxia.device.virtio.vsock.VsockStream;

/** Replays every packet stream in {@code src/test/resources/vsock-corpus/} (format in its README). */
class VsockCorpusTest {

    @TestFactory
    Stream<DynamicTest> replaysEveryCorpusFile() throws Exception {
        URL url = getClass().getClassLoader().getResource("vsock-corpus");
        assertNotNull(url, "vsock-corpus is missing from the test resources");
        List<Path> files;
        try (Stream<Path> listing = Files.list(Path.of(url.toURI()))) {
            files = listing.filter(p -> p.getFileName().toString().endsWith(".vs")).sorted().toList();
        }
        assertFalse(files.isEmpty(), "the corpus has no .vs files");
        return files.stream().map(file -> DynamicTest.dynamicTest(file.getFileName().toString(), () -> replay(file)));
    }

    private static void replay(Path file) throws Exception {
        VsockStreamFuzzer f = null;
        int rxSize = VsockStreamFuzzer.RX_MAX;
        try {
            for (String raw : Files.readAllLines(file)) {
                String line = raw.contains("#") ? raw.substring(0, raw.indexOf('#')).strip() : raw.strip();
                if (line.isEmpty()) {
                    continue;
                }
                String[] w = line.split("\\s+");
                if (w[0].equals("stream")) {
                    VsockStreamFuzzTest.runStream(Long.parseLong(w[1]), Integer.parseInt(w[2]));
                    continue;
                }
                if (w[0].equals("rx")) {
                    rxSize = Integer.parseInt(w[1]);
                    continue;
                }
                if (f == null) {
                    f = new VsockStreamFuzzer(rxSize);
                    f.recordOps = true;
                }
                switch (w[0]) {
                    case "packet" -> packet(f, w);
                    case "accept" -> f.accept();
                    case "accepted" -> {
                        int n = 0;
                        VsockStream s;
                        while ((s = f.acceptNow()) != null) {
                            s.close();
                            n++;
                        }
                        assertEquals(Integer.parseInt(w[1]), n, line);
                    }
                    case "write" -> f.write(f.lastStream(), Integer.parseInt(w[1]));
                    case "expect" -> {
                        for (int i = 1; i < w.length; i++) {
                            assertEquals(Integer.parseInt(w[i]), next(f), line);
                        }
                    }
                    case "silent" -> {
                        Thread.sleep(100);
                        f.drain();
                        assertEquals(List.of(), List.copyOf(f.receivedOps), line);
                    }
                    case "connections" -> assertEquals(Integer.parseInt(w[1]), f.connections(), line);
                    default -> throw new IllegalArgumentException(file + ": unknown line '" + line + "'");
                }
            }
        } finally {
            if (f != null) {
                f.close();
            }
        }
    }

    private static int next(VsockStreamFuzzer f) throws InterruptedException {
        long end = System.nanoTime() + Duration.ofSeconds(2).toNanos();
        while (f.receivedOps.isEmpty() && System.nanoTime() < end) {
            f.drain();
            Thread.sleep(1);
        }
        Integer op = f.receivedOps.poll();
        assertNotNull(op, "a packet arrives");
        return op;
    }

    /** {@code packet op=N src=P dst=P [len=N] [payload=N] [type=N] [srccid=N] [dstcid=N] [flags=N] [buf=N] [fwd=N]}. */
    private static void packet(VsockStreamFuzzer f, String[] w) {
        Map<String, Long> v = new HashMap<>(Map.of("type", 1L, "srccid", VsockStreamFuzzer.CID, "dstcid", 2L, "flags", 0L,
                "buf", 256L * 1024, "fwd", 0L, "payload", 0L));
        for (int i = 1; i < w.length; i++) {
            String[] kv = w[i].split("=", 2);
            v.put(kv[0], Long.decode(kv[1]));
        }
        int payload = v.get("payload").intValue();
        f.send(v.get("srccid"), v.get("dstcid"), v.get("type").intValue(), v.get("op").intValue(), v.get("flags").intValue(),
                v.get("src").intValue(), v.get("dst").intValue(), v.getOrDefault("len", (long) payload).intValue(),
                v.get("buf").intValue(), v.get("fwd").intValue(), payload, 0, null);
        f.drain();
    }
}
