package org.nxia.shell.support;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;

import org.nxia.vmm.api.VmResult;
import org.nxia.vmm.api.device.DeviceConfig;

/** Formatting and parsing shared by the commands, and how a command gives the launcher its exit status. */
public final class Text {

    /** The session variable a command sets to its exit status: the process's, when the launcher ran it ({@code -Dnxia.command}). */
    public static final String EXIT_CODE = "nxia.exit";

    private Text() {
    }

    /** What {@link #devices} reads, for a command's help. */
    public static final String DEVICES_HELP = "devices, ';'-separated: type[:key=value,...] (device:list shows the types)";

    /** Device specs as {@code --devices} takes them: {@code uart;virtio-blk:path=disk.img}. */
    public static List<DeviceConfig> devices(String specs) {
        List<DeviceConfig> configs = new ArrayList<>();
        for (String spec : specs.split(";")) {
            if (!spec.isBlank()) {
                configs.add(DeviceConfig.parse(spec));
            }
        }
        return configs;
    }

    /** Parses {@code 500ms}, {@code 30s}, {@code 2m} or plain seconds. */
    public static Duration parseDuration(String text) {
        String t = text.trim().toLowerCase(Locale.ROOT);
        try {
            if (t.endsWith("ms")) {
                return Duration.ofMillis(Long.parseLong(t.substring(0, t.length() - 2)));
            }
            if (t.endsWith("s")) {
                return Duration.ofSeconds(Long.parseLong(t.substring(0, t.length() - 1)));
            }
            if (t.endsWith("m")) {
                return Duration.ofMinutes(Long.parseLong(t.substring(0, t.length() - 1)));
            }
            return Duration.ofSeconds(Long.parseLong(t));
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("'" + text + "' is not a duration: use e.g. 500ms, 30s or 2m");
        }
    }

    public static String duration(Duration d) {
        long nanos = d.toNanos();
        if (nanos < 1_000_000) {
            return String.format(Locale.ROOT, "%.1f µs", nanos / 1e3);
        }
        if (nanos < 10_000_000_000L) {
            return String.format(Locale.ROOT, "%.2f ms", nanos / 1e6);
        }
        return String.format(Locale.ROOT, "%.1f s", nanos / 1e9);
    }

    public static String size(long bytes) {
        if (bytes >= 1L << 20 && bytes % (1L << 20) == 0) {
            return (bytes >> 20) + " MiB";
        }
        if (bytes >= 1024 && bytes % 1024 == 0) {
            return (bytes >> 10) + " KiB";
        }
        return bytes + " bytes";
    }

    /** One line for people: how a VM ended. */
    public static String outcome(VmResult r) {
        return switch (r.reason()) {
            case EXITED -> "exited with status " + r.exitStatus();
            case HALTED -> "halted";
            case POWERED_OFF -> "powered off: " + r.detail();
            case RESET -> "reset: " + r.detail();
            case STOPPED -> "stopped";
            case TIMEOUT -> "timed out: " + r.detail();
            case TRIPLE_FAULT -> "crashed: " + r.detail();
            case GUEST_ERROR -> "stopped on a guest error: " + r.detail();
            case HYPERVISOR_ERROR -> "failed in the hypervisor: " + r.detail();
        };
    }

    /** A plain-text table: a header row, then rows; columns padded to their widest cell. */
    /**
     * How the VM's virtio kicks arrive, from its counters: {@code notify=ioeventfd}
     * once a doorbell took a write or while one is open, else {@code notify=mmio-exit}.
     */
    public static String notifyPath(Map<String, Long> counters) {
        long open = counters.getOrDefault("ioeventfd_doorbells", 0L);
        long writes = counters.getOrDefault("ioeventfd_writes", 0L);
        if (open == 0 && writes == 0) {
            return "notify=mmio-exit (no doorbell in use: virtio kicks exit to the VMM)";
        }
        return "notify=ioeventfd (" + open + " doorbells open, " + writes + " kicks taken without an exit)";
    }

    public static String table(List<String> header, List<List<String>> rows) {
        int[] widths = new int[header.size()];
        for (int i = 0; i < header.size(); i++) {
            widths[i] = header.get(i).length();
        }
        for (List<String> row : rows) {
            for (int i = 0; i < row.size(); i++) {
                widths[i] = Math.max(widths[i], row.get(i).length());
            }
        }
        StringBuilder out = new StringBuilder();
        appendRow(out, header, widths);
        StringBuilder rule = new StringBuilder("|");
        for (int w : widths) {
            rule.append("-".repeat(w + 2)).append('|');
        }
        out.append(rule).append('\n');
        for (List<String> row : rows) {
            appendRow(out, row, widths);
        }
        return out.toString();
    }

    private static void appendRow(StringBuilder out, List<String> cells, int[] widths) {
        out.append('|');
        for (int i = 0; i < widths.length; i++) {
            String c = i < cells.size() ? cells.get(i) : "";
            out.append(' ').append(c).append(" ".repeat(widths[i] - c.length())).append(" |");
        }
        out.append('\n');
    }
}
