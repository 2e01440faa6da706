package org.nxia.vmm.internal;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;

/**
 * What a guest printed: the last {@link #LIMIT} bytes (older output is
 * dropped) and, optionally, a live copy to a sink. A UART writes one byte per
 * exit, so appending copies bytes into a buffer that doubles until it holds
 * {@link #LIMIT} and is a ring from then on (no allocation per write), and
 * text is decoded only when someone reads it.
 */
final class ConsoleLog {

    static final int LIMIT = 1 << 20;

    static final int INITIAL = 4096;

    private byte[] ring = new byte[INITIAL];
    /** Bytes ever appended; the buffer holds the last min(total, LIMIT) of them. */
    private long total;
    private volatile Appendable sink;

    void sink(Appendable sink) {
        this.sink = sink;
    }

    synchronized void append(byte[] bytes, int offset, int length) {
        for (int i = 0; i < length; i++) {
            if (total == ring.length && ring.length < LIMIT) {
                ring = java.util.Arrays.copyOf(ring, ring.length * 2);  // still linear: no wrap before LIMIT
            }
            ring[(int) (total++ % ring.length)] = bytes[offset + i];
        }
        Appendable out = sink;
        if (out != null) {
            try {
                if (out instanceof OutputStream os) {
                    os.write(bytes, offset, length);  // a PrintStream takes bytes as they are
                    os.flush();
                } else {
                    out.append(new String(bytes, offset, length, StandardCharsets.UTF_8));
                }
            } catch (IOException e) {
                sink = null;  // a closed terminal must not stop the guest
            }
        }
    }

    /** Forgets what was printed (a sandbox's next run starts with an empty console); keeps the buffer. */
    synchronized void clear() {
        total = 0;
    }

    synchronized String text() {
        int kept = (int) Math.min(total, ring.length);
        byte[] out = new byte[kept];
        int start = (int) ((total - kept) % ring.length);
        int first = Math.min(kept, ring.length - start);
        System.arraycopy(ring, start, out, 0, first);
        System.arraycopy(ring, 0, out, first, kept - first);
        String text = new String(out, StandardCharsets.UTF_8);
        long dropped = total - kept;
        return dropped == 0 ? text : "[... " + dropped + " bytes dropped]\n" + text;
    }
}
