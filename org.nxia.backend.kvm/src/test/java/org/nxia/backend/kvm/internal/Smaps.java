package org.nxia.backend.kvm.internal;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** One mapping's entry in /proc/self/smaps (Rss, THPeligible, VmFlags, ...): what the kernel made of it. */
record Smaps(Map<String, String> fields) {

    static Smaps of(long address) throws IOException {
        List<String> lines = Files.readAllLines(Path.of("/proc/self/smaps"));
        String start = Long.toHexString(address) + "-";
        for (int i = 0; i < lines.size(); i++) {
            if (lines.get(i).startsWith(start)) {
                Map<String, String> fields = new LinkedHashMap<>();
                for (int j = i + 1; j < lines.size() && !lines.get(j).matches("^[0-9a-f]+-[0-9a-f]+ .*"); j++) {
                    String[] kv = lines.get(j).split(":", 2);
                    fields.put(kv[0].strip(), kv.length > 1 ? kv[1].strip() : "");
                }
                return new Smaps(fields);
            }
        }
        throw new IllegalStateException("no mapping at 0x" + Long.toHexString(address) + " in /proc/self/smaps");
    }

    /** A "NNN kB" field in bytes. */
    long kib(String field) {
        return Long.parseLong(fields.get(field).replace("kB", "").strip()) << 10;
    }

    boolean thpEligible() {
        return "1".equals(fields.get("THPeligible"));
    }

    /** VmFlags has {@code flag} ("hg": madvise(MADV_HUGEPAGE) was applied). */
    boolean flag(String flag) {
        return List.of(fields.getOrDefault("VmFlags", "").split(" ")).contains(flag);
    }
}
