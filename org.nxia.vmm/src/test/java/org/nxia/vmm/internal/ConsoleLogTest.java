package org.nxia.vmm.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

import org.junit.jupiter.api.Test;

class ConsoleLogTest {

    @Test
    void keepsWhatWasPrintedByteByByteIncludingMultiByteCharacters() {
        ConsoleLog log = new ConsoleLog();
        byte[] text = "héllo → wörld\n".getBytes(StandardCharsets.UTF_8);
        for (byte b : text) {
            log.append(new byte[] {b}, 0, 1);
        }
        assertEquals("héllo → wörld\n", log.text());
    }

    @Test
    void growsThenKeepsOnlyTheLastMegabyte() {
        ConsoleLog log = new ConsoleLog();
        byte[] line = new byte[1000];
        for (int i = 0; i < 1100; i++) {
            java.util.Arrays.fill(line, (byte) ('a' + i % 26));
            log.append(line, 0, line.length);
        }
        String text = log.text();
        long dropped = 1100L * 1000 - ConsoleLog.LIMIT;
        assertTrue(text.startsWith("[... " + dropped + " bytes dropped]\n"), text.substring(0, 40));
        String kept = text.substring(text.indexOf('\n') + 1);
        assertEquals(ConsoleLog.LIMIT, kept.length());
        assertEquals((char) ('a' + 1099 % 26), kept.charAt(kept.length() - 1));
        assertEquals((char) ('a' + (int) (dropped / 1000) % 26), kept.charAt(0));
    }

    @Test
    void copiesBytesToAStreamSinkAsTheyCome() {
        ConsoleLog log = new ConsoleLog();
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        log.sink(new PrintStream(out, true, StandardCharsets.UTF_8));
        byte[] text = "ready\n".getBytes(StandardCharsets.US_ASCII);
        log.append(text, 0, text.length);
        assertEquals("ready\n", out.toString(StandardCharsets.US_ASCII));
        StringBuilder chars = new StringBuilder();
        log.sink(chars);
        log.append(text, 0, 3);
        assertEquals("rea", chars.toString());
    }
}
