package org.nxia.vmm.api;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Objects;

import org.nxia.vmm.api.device.DeviceConfig;
import org.nxia.vmm.spi.HostPlacement;

/**
 * What a micro-VM is made of. Validated on construction: a bad value throws
 * {@link IllegalArgumentException} whose message says what is wrong and what
 * is allowed.
 *
 * @param name           a name for people; need not be unique
 * @param memoryBytes    guest RAM: a multiple of 2 MiB, from 2 MiB to 3 GiB
 * @param vcpus          number of vCPUs (micro-VMs: 1)
 * @param image          the guest's ELF image
 * @param input          bytes placed in guest memory for the guest to read (may be empty)
 * @param outputCapacity bytes the guest may return as output
 * @param arg            a number handed to the guest in its boot block
 * @param timeout        how long {@code run} waits before stopping the VM
 * @param devices        the devices the VM gets, by type id and parameters
 * @param placement      where its vCPU and RAM go on the host
 */
public record VmProfile(String name, long memoryBytes, int vcpus, Path image, byte[] input,
                        int outputCapacity, long arg, Duration timeout, List<DeviceConfig> devices,
                        HostPlacement placement) implements VmSpec {

    public static final long MIB = 1L << 20;
    public static final long MIN_MEMORY = 2 * MIB;
    public static final long MAX_MEMORY = 3072 * MIB;
    public static final long DEFAULT_MEMORY = 16 * MIB;
    public static final int MAX_INPUT = 256 << 20;
    public static final int MAX_OUTPUT = 64 << 20;
    public static final int DEFAULT_OUTPUT = 64 << 10;
    public static final Duration DEFAULT_TIMEOUT = Duration.ofSeconds(30);

    public VmProfile {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(image, "image");
        Objects.requireNonNull(input, "input");
        Objects.requireNonNull(timeout, "timeout");
        Objects.requireNonNull(devices, "devices");
        Objects.requireNonNull(placement, "placement");
        if (memoryBytes < MIN_MEMORY || memoryBytes > MAX_MEMORY || memoryBytes % (2 * MIB) != 0) {
            throw new IllegalArgumentException(
                    "memory %s is not allowed: give a multiple of 2 MiB from 2 MiB to 3072 MiB (e.g. 16M)"
                            .formatted(bytesToString(memoryBytes)));
        }
        if (vcpus != 1) {
            throw new IllegalArgumentException("vcpus=" + vcpus + " is not supported: micro-VMs run on 1 vCPU");
        }
        if (input.length > MAX_INPUT) {
            throw new IllegalArgumentException("input of " + bytesToString(input.length) + " is too large: at most 256 MiB");
        }
        if (outputCapacity < 0 || outputCapacity > MAX_OUTPUT) {
            throw new IllegalArgumentException("output capacity " + outputCapacity + " is not allowed: 0 to 64 MiB");
        }
        if (timeout.isNegative() || timeout.isZero()) {
            throw new IllegalArgumentException("timeout must be positive, got " + timeout);
        }
        input = input.clone();
        devices = List.copyOf(devices);
    }

    /** A profile placed as {@link HostPlacement#NONE}. */
    public VmProfile(String name, long memoryBytes, int vcpus, Path image, byte[] input,
                     int outputCapacity, long arg, Duration timeout, List<DeviceConfig> devices) {
        this(name, memoryBytes, vcpus, image, input, outputCapacity, arg, timeout, devices, HostPlacement.NONE);
    }

    /** A profile with the defaults: 16 MiB, 1 vCPU, no input, 64 KiB output, 30 s. */
    public static VmProfile of(Path image) {
        return new VmProfile(nameOf(image), DEFAULT_MEMORY, 1, image, new byte[0], DEFAULT_OUTPUT, 0, DEFAULT_TIMEOUT, List.of());
    }

    public VmProfile withMemory(long bytes) {
        return new VmProfile(name, bytes, vcpus, image, input, outputCapacity, arg, timeout, devices, placement);
    }

    public VmProfile withInput(byte[] bytes) {
        return new VmProfile(name, memoryBytes, vcpus, image, bytes, outputCapacity, arg, timeout, devices, placement);
    }

    public VmProfile withArg(long value) {
        return new VmProfile(name, memoryBytes, vcpus, image, input, outputCapacity, value, timeout, devices, placement);
    }

    public VmProfile withTimeout(Duration value) {
        return new VmProfile(name, memoryBytes, vcpus, image, input, outputCapacity, arg, value, devices, placement);
    }

    public VmProfile withName(String value) {
        return new VmProfile(value, memoryBytes, vcpus, image, input, outputCapacity, arg, timeout, devices, placement);
    }

    /** A copy with {@code list} as its devices. */
    public VmProfile withDevices(List<DeviceConfig> list) {
        return new VmProfile(name, memoryBytes, vcpus, image, input, outputCapacity, arg, timeout, list, placement);
    }

    public VmProfile withPlacement(HostPlacement value) {
        return new VmProfile(name, memoryBytes, vcpus, image, input, outputCapacity, arg, timeout, devices, value);
    }

    @Override
    public byte[] input() {
        return input.clone();
    }

    /** Parses sizes such as {@code 16M}, {@code 2G}, {@code 4096K} or plain bytes. */
    public static long parseSize(String text) {
        String t = text.trim().toUpperCase(java.util.Locale.ROOT);
        if (t.endsWith("IB")) {
            t = t.substring(0, t.length() - 2);
        } else if (t.endsWith("B")) {
            t = t.substring(0, t.length() - 1);
        }
        long unit = 1;
        if (!t.isEmpty()) {
            switch (t.charAt(t.length() - 1)) {
                case 'K' -> unit = 1L << 10;
                case 'M' -> unit = 1L << 20;
                case 'G' -> unit = 1L << 30;
                default -> unit = 1;
            }
        }
        String digits = unit == 1 ? t : t.substring(0, t.length() - 1);
        try {
            long value = Long.parseLong(digits.trim());
            if (value < 0 || value > Long.MAX_VALUE / unit) {
                throw new NumberFormatException();
            }
            return value * unit;
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("'" + text + "' is not a size: use bytes or a number with K, M or G (e.g. 16M)");
        }
    }

    static String bytesToString(long bytes) {
        return bytes % MIB == 0 && bytes != 0 ? bytes / MIB + " MiB" : bytes + " bytes";
    }

    private static String nameOf(Path image) {
        Path file = image.getFileName();
        String n = file == null ? image.toString() : file.toString();
        return n.endsWith(".elf") ? n.substring(0, n.length() - 4) : n;
    }
}
