package org.nxia.vmm.internal;

import java.io.IOException;
import java.nio.charset.StandardCharsets;

/**
 * What a guest printed: kept up to {@link #LIMIT} bytes (older text is
 * dropped) and, optionally, copied live to a sink.
 */
final class ConsoleLog {

    static final int LIMIT = 1 << 20;

    private final StringBuilder text = new StringBuilder();
    private volatile Appendable sink;
    private long dropped;

    void sink(Appendable sink) {
        this.sink = sink;
    }

    synchronized void append(byte[] bytes, int offset, int length) {
        String s = new String(bytes, offset, length, StandardCharsets.UTF_8);
        text.append(s);
        if (text.length() > LIMIT) {
            int cut = text.length() - LIMIT;
            text.delete(0, cut);
            dropped += cut;
        }
        Appendable out = sink;
        if (out != null) {
            try {
                out.append(s);
                if (out instanceof java.io.Flushable f) {
                    f.flush();
                }
            } catch (IOException e) {
                sink = null;  // a closed terminal must not stop the guest
            }
        }
    }

    synchronized String text() {
        return dropped == 0 ? text.toString() : "[... " + dropped + " characters dropped]\n" + text;
    }
}
