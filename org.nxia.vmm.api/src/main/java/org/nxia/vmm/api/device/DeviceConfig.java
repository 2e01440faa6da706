package org.nxia.vmm.api.device;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.regex.Pattern;

/**
 * A device a profile asks for: a type and its parameters, written
 * {@code type} or {@code type:key=value,key=value} (e.g.
 * {@code blk:path=disk.img,ro=false}).
 */
public record DeviceConfig(String type, Map<String, String> parameters) {

    private static final Pattern TYPE = Pattern.compile("[a-z][a-z0-9-]{0,31}");
    private static final Pattern KEY = Pattern.compile("[a-z][a-z0-9_-]{0,31}");

    public DeviceConfig {
        Objects.requireNonNull(type, "type");
        if (!TYPE.matcher(type).matches()) {
            throw new IllegalArgumentException("'" + type + "' is not a device type: lower-case letters, digits and dashes, starting with a letter");
        }
        for (String key : parameters.keySet()) {
            if (!KEY.matcher(key).matches()) {
                throw new IllegalArgumentException("device " + type + ": '" + key + "' is not a parameter name");
            }
        }
        // Kept in the order written, so toString() prints what was parsed.
        parameters = Collections.unmodifiableMap(new LinkedHashMap<>(parameters));
        parameters.forEach((k, v) -> Objects.requireNonNull(v, k));
    }

    /** Parses {@code type[:key=value,...]}. */
    public static DeviceConfig parse(String spec) {
        String s = spec.trim();
        int colon = s.indexOf(':');
        String type = colon < 0 ? s : s.substring(0, colon);
        Map<String, String> params = new LinkedHashMap<>();
        if (colon >= 0 && colon < s.length() - 1) {
            for (String pair : s.substring(colon + 1).split(",")) {
                int eq = pair.indexOf('=');
                if (eq <= 0) {
                    throw new IllegalArgumentException("device '" + spec + "': '" + pair + "' is not key=value");
                }
                String key = pair.substring(0, eq).trim().toLowerCase(Locale.ROOT);
                if (params.put(key, pair.substring(eq + 1).trim()) != null) {
                    throw new IllegalArgumentException("device '" + spec + "': " + key + " is given twice");
                }
            }
        }
        return new DeviceConfig(type, params);
    }

    /** A parameter, or {@code fallback} when absent. */
    public String get(String key, String fallback) {
        return parameters.getOrDefault(key, fallback);
    }

    /** An integer parameter (decimal or 0x hex) within [min, max], or {@code fallback} when absent. */
    public long number(String key, long fallback, long min, long max) {
        String v = parameters.get(key);
        if (v == null) {
            return fallback;
        }
        long n;
        try {
            n = v.startsWith("0x") || v.startsWith("0X") ? Long.parseLong(v.substring(2), 16) : Long.parseLong(v);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("device " + type + ": " + key + "=" + v + " is not a number");
        }
        if (n < min || n > max) {
            throw new IllegalArgumentException("device %s: %s=%s is outside %d..%d".formatted(type, key, v, min, max));
        }
        return n;
    }

    /** A boolean parameter ({@code true/false/1/0/yes/no}), or {@code fallback} when absent. */
    public boolean flag(String key, boolean fallback) {
        String v = parameters.get(key);
        if (v == null) {
            return fallback;
        }
        return switch (v.toLowerCase(Locale.ROOT)) {
            case "true", "1", "yes", "on" -> true;
            case "false", "0", "no", "off" -> false;
            default -> throw new IllegalArgumentException("device " + type + ": " + key + "=" + v + " is not true or false");
        };
    }

    @Override
    public String toString() {
        if (parameters.isEmpty()) {
            return type;
        }
        StringBuilder s = new StringBuilder(type).append(':');
        parameters.forEach((k, v) -> s.append(k).append('=').append(v).append(','));
        return s.substring(0, s.length() - 1);
    }
}
