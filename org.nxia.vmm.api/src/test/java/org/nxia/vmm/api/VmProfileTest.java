package org.nxia.vmm.api;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.time.Duration;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

class VmProfileTest {

    private static final Path IMAGE = Path.of("guests/hello.elf");

    private static VmProfile profile(long memory, int vcpus, byte[] input, int output, Duration timeout) {
        return new VmProfile("t", memory, vcpus, IMAGE, input, output, 0, timeout, java.util.List.of());
    }

    private static String rejection(Runnable construct) {
        return assertThrows(IllegalArgumentException.class, construct::run).getMessage();
    }

    @Test
    void defaultsAreSixteenMibOneVcpuNoInputSixtyFourKibOutputThirtySeconds() {
        VmProfile p = VmProfile.of(IMAGE);
        assertEquals("hello", p.name());
        assertEquals(16L << 20, p.memoryBytes());
        assertEquals(1, p.vcpus());
        assertEquals(0, p.input().length);
        assertEquals(64 << 10, p.outputCapacity());
        assertEquals(0, p.arg());
        assertEquals(Duration.ofSeconds(30), p.timeout());
    }

    @Test
    void nameKeepsAnExtensionOtherThanElf() {
        assertEquals("guest.bin", VmProfile.of(Path.of("/x/guest.bin")).name());
    }

    @ParameterizedTest
    @ValueSource(longs = {2L << 20, 4L << 20, 16L << 20, 3072L << 20})
    void acceptsMultiplesOfTwoMibFromTwoMibToThreeGib(long memory) {
        assertEquals(memory, VmProfile.of(IMAGE).withMemory(memory).memoryBytes());
    }

    @ParameterizedTest
    @ValueSource(longs = {0, -1, -(2L << 20), 1L << 20, (2L << 20) + 4096, 3L << 20, 3074L << 20, Long.MAX_VALUE, Long.MIN_VALUE})
    void rejectsMemoryOutsideRangeOrNotTwoMibMultiple(long memory) {
        String message = rejection(() -> VmProfile.of(IMAGE).withMemory(memory));
        assertTrue(message.contains("multiple of 2 MiB from 2 MiB to 3072 MiB"), message);
    }

    @Test
    void memoryMessageShowsMibWhenWholeAndBytesOtherwise() {
        assertTrue(rejection(() -> VmProfile.of(IMAGE).withMemory(1L << 20)).startsWith("memory 1 MiB is not allowed"));
        assertTrue(rejection(() -> VmProfile.of(IMAGE).withMemory(12345)).startsWith("memory 12345 bytes is not allowed"));
        assertTrue(rejection(() -> VmProfile.of(IMAGE).withMemory(0)).startsWith("memory 0 bytes is not allowed"));
    }

    @ParameterizedTest
    @ValueSource(ints = {0, 2, -1, 64})
    void rejectsVcpuCountOtherThanOne(int vcpus) {
        String message = rejection(() -> profile(16L << 20, vcpus, new byte[0], 0, Duration.ofSeconds(1)));
        assertEquals("vcpus=" + vcpus + " is not supported: micro-VMs run on 1 vCPU", message);
    }

    @ParameterizedTest
    @ValueSource(ints = {-1, (64 << 20) + 1, Integer.MIN_VALUE, Integer.MAX_VALUE})
    void rejectsOutputCapacityOutsideZeroToSixtyFourMib(int output) {
        String message = rejection(() -> profile(16L << 20, 1, new byte[0], output, Duration.ofSeconds(1)));
        assertEquals("output capacity " + output + " is not allowed: 0 to 64 MiB", message);
    }

    @ParameterizedTest
    @ValueSource(ints = {0, 1, 64 << 20})
    void acceptsOutputCapacityAtBounds(int output) {
        assertEquals(output, profile(16L << 20, 1, new byte[0], output, Duration.ofSeconds(1)).outputCapacity());
    }

    @Test
    void rejectsZeroOrNegativeTimeout() {
        assertTrue(rejection(() -> VmProfile.of(IMAGE).withTimeout(Duration.ZERO)).startsWith("timeout must be positive"));
        assertTrue(rejection(() -> VmProfile.of(IMAGE).withTimeout(Duration.ofMillis(-1))).startsWith("timeout must be positive"));
        assertEquals(Duration.ofNanos(1), VmProfile.of(IMAGE).withTimeout(Duration.ofNanos(1)).timeout());
    }

    @Test
    void rejectsNullComponentsNamingThem() {
        assertEquals("name", assertThrows(NullPointerException.class,
                () -> new VmProfile(null, 16L << 20, 1, IMAGE, new byte[0], 0, 0, Duration.ofSeconds(1), java.util.List.of())).getMessage());
        assertEquals("image", assertThrows(NullPointerException.class,
                () -> new VmProfile("n", 16L << 20, 1, null, new byte[0], 0, 0, Duration.ofSeconds(1), java.util.List.of())).getMessage());
        assertEquals("input", assertThrows(NullPointerException.class,
                () -> new VmProfile("n", 16L << 20, 1, IMAGE, null, 0, 0, Duration.ofSeconds(1), java.util.List.of())).getMessage());
        assertEquals("timeout", assertThrows(NullPointerException.class,
                () -> new VmProfile("n", 16L << 20, 1, IMAGE, new byte[0], 0, 0, null, java.util.List.of())).getMessage());
    }

    @Test
    void inputIsCopiedInAndOut() {
        byte[] bytes = {1, 2, 3};
        VmProfile p = VmProfile.of(IMAGE).withInput(bytes);
        bytes[0] = 9;
        assertArrayEquals(new byte[] {1, 2, 3}, p.input());
        p.input()[1] = 9;
        assertArrayEquals(new byte[] {1, 2, 3}, p.input());
    }

    @Test
    void withersChangeOnlyTheirComponent() {
        VmProfile base = VmProfile.of(IMAGE);
        VmProfile p = base.withArg(42).withName("n").withMemory(4L << 20);
        assertEquals(42, p.arg());
        assertEquals("n", p.name());
        assertEquals(4L << 20, p.memoryBytes());
        assertEquals(base.timeout(), p.timeout());
        assertEquals(base.outputCapacity(), p.outputCapacity());
        assertEquals(base.image(), p.image());
    }

    @ParameterizedTest
    @CsvSource({
            "0, 0",
            "4096, 4096",
            "16M, 16777216",
            "16m, 16777216",
            "16MiB, 16777216",
            "16mib, 16777216",
            "16MB, 16777216",
            "4096K, 4194304",
            "2G, 2147483648",
            "3g, 3221225472",
            "100B, 100",
            "' 16M ', 16777216",
            "'16 M', 16777216",
            "8589934591G, 9223372035781033984",
            "9223372036854775807, 9223372036854775807",
    })
    void parsesSizesWithOptionalUnit(String text, long expected) {
        assertEquals(expected, VmProfile.parseSize(text));
    }

    @ParameterizedTest
    @ValueSource(strings = {"", " ", "M", "MiB", "B", "KB", "-1", "-16M", "16X", "1.5G", "0x10", "G16", "16 MM",
            "8589934592G", "9223372036854775808", "99999999999999999999K"})
    void rejectsTextThatIsNotASize(String text) {
        String message = assertThrows(IllegalArgumentException.class, () -> VmProfile.parseSize(text)).getMessage();
        assertEquals("'" + text + "' is not a size: use bytes or a number with K, M or G (e.g. 16M)", message);
    }

    @Test
    void parsedSizeIsAcceptedAsMemory() {
        assertEquals(16L << 20, VmProfile.of(IMAGE).withMemory(VmProfile.parseSize("16M")).memoryBytes());
    }
}
