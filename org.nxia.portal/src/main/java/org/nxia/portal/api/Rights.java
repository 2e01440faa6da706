package org.nxia.portal.api;

import java.util.Locale;

/** What a party may do with a region: read only, or read and write. */
public enum Rights {
    RO, RW;

    /** Parses {@code ro} or {@code rw} (any case). */
    public static Rights parse(String text) {
        return switch (text.trim().toLowerCase(Locale.ROOT)) {
            case "ro" -> RO;
            case "rw" -> RW;
            default -> throw new IllegalArgumentException("'" + text + "' is not a right: ro or rw");
        };
    }

    /** Whether these rights include {@code wanted}. */
    public boolean allows(Rights wanted) {
        return this == RW || wanted == RO;
    }

    @Override
    public String toString() {
        return name().toLowerCase(Locale.ROOT);
    }
}
