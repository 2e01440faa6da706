package org.nxia.vmm.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.lang.reflect.Proxy;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.atomic.AtomicReference;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;
import org.nxia.vmm.spi.GuestMemory;
import org.nxia.vmm.api.HostCallContext;
import org.nxia.vmm.api.HostFunction;
import org.nxia.lsm.policy.api.CallRequest;
import org.nxia.vmm.api.VirtualMachine;
import org.nxia.vmm.api.VmProfile;

class HostCallsTest {

    private static final long RAM = 2L << 20;
    private static final long BLOCK = 0x4000;
    private static final long ARG = 0x5000;
    private static final long RET = 0x6000;

    /** Upper-cases the argument into the result. */
    private static final HostFunction UPPER = (argument, result) -> {
        byte[] in = argument.toArray(ValueLayout.JAVA_BYTE);
        byte[] out = new String(in, StandardCharsets.US_ASCII).toUpperCase(java.util.Locale.ROOT).getBytes(StandardCharsets.US_ASCII);
        MemorySegment.copy(out, 0, result, ValueLayout.JAVA_BYTE, 0, Math.min(out.length, (int) result.byteSize()));
        return out.length;
    };

    private final byte[] ram = new byte[(int) RAM];
    private final GuestMemory memory = GuestMemory.of(0, MemorySegment.ofArray(ram));
    private final HostCalls calls = new HostCalls();

    private final RecordingPolicy policy = RecordingPolicy.allowingAll();

    /** The calling VM as the policy sees it: its id and its spec's name, nothing else. */
    private static final VirtualMachine VM = (VirtualMachine) Proxy.newProxyInstance(HostCallsTest.class.getClassLoader(),
            new Class<?>[] {VirtualMachine.class}, (proxy, method, args) -> switch (method.getName()) {
                case "id" -> "vm-7";
                case "spec" -> VmProfile.of(Path.of("sandbox.elf"));
                default -> throw new UnsupportedOperationException(method.getName() + " in this test");
            });

    /** A context for a VM that is only its memory and identity: these tests exercise the block, not the VM. */
    private static HostCallContext context(GuestMemory memory) {
        return new HostCallContext() {
            @Override
            public VirtualMachine vm() {
                return VM;
            }

            @Override
            public GuestMemory memory() {
                return memory;
            }

            @Override
            public void onDestroy(Runnable action) {
                throw new UnsupportedOperationException("no VM in this test");
            }
        };
    }

    HostCallsTest() {
        add("upper", UPPER);
        calls.policy(policy);
    }

    /** Adds a function that the policy polices (every function the tests add but one). */
    private void add(String name, HostFunction function) {
        calls.add(name, function, false);
    }

    /** Writes a block per docs/guest-abi.md, "Host calls". */
    private void block(long at, String name, long argGpa, long argLen, long retGpa, long retCap) {
        byte[] raw = new byte[32];
        byte[] n = name.getBytes(StandardCharsets.ISO_8859_1);
        System.arraycopy(n, 0, raw, 0, Math.min(n.length, 32));
        rawBlock(at, 0x4348584e, 1, raw, argGpa, argLen, retGpa, retCap);
    }

    private void rawBlock(long at, int magic, int version, byte[] name, long argGpa, long argLen, long retGpa, long retCap) {
        memory.writeInt(at, magic);
        memory.writeShort(at + 4, (short) version);
        memory.writeShort(at + 6, (short) 0);
        memory.writeInt(at + 8, 0x7777_7777);  // status: must be overwritten
        memory.writeInt(at + 12, 0);
        memory.write(at + 16, name);
        memory.writeLong(at + 48, argGpa);
        memory.writeLong(at + 56, argLen);
        memory.writeLong(at + 64, retGpa);
        memory.writeLong(at + 72, retCap);
        memory.writeLong(at + 80, 0x5555_5555_5555_5555L);  // ret_len: must be overwritten
    }

    private void argument(String text) {
        memory.write(ARG, text.getBytes(StandardCharsets.US_ASCII));
    }

    private int status() {
        return memory.readInt(BLOCK + 8);
    }

    private long retLen() {
        return memory.readLong(BLOCK + 80);
    }

    private String result(int length) {
        return new String(memory.read(RET, length), StandardCharsets.US_ASCII);
    }

    @Test
    void callsFunctionByNameAndReportsResultLength() {
        argument("hello, guest");
        block(BLOCK, "upper", ARG, 12, RET, 64);
        assertEquals(HostCalls.OK, calls.handle(context(memory), BLOCK));
        assertEquals(0, status());
        assertEquals(12, retLen());
        assertEquals("HELLO, GUEST", result(12));
        assertEquals("hello, guest", new String(memory.read(ARG, 12), StandardCharsets.US_ASCII));
    }

    @Test
    void statusCodesMatchTheAbi() {
        assertEquals(0, HostCalls.OK);
        assertEquals(-1, HostCalls.EINVAL);
        assertEquals(-2, HostCalls.ENOENT);
        assertEquals(-3, HostCalls.EFAULT);
        assertEquals(-4, HostCalls.E2BIG);
        assertEquals(-5, HostCalls.EFAIL);
        assertEquals(-6, HostCalls.EPERM);
        assertEquals(88, HostCalls.BLOCK_SIZE);
    }

    @Test
    void acceptsEmptyArgumentAndEmptyResultBuffer() {
        block(BLOCK, "upper", 0, 0, 0, 0);
        assertEquals(HostCalls.OK, calls.handle(context(memory), BLOCK));
        assertEquals(0, retLen());
    }

    @Test
    void acceptsArgumentOfExactlyOneMib() {
        AtomicReference<Long> seen = new AtomicReference<>();
        add("size", (a, r) -> {
            seen.set(a.byteSize());
            return 0;
        });
        block(BLOCK, "size", 0x10_0000, 1 << 20, RET, 0);
        assertEquals(HostCalls.OK, calls.handle(context(memory), BLOCK));
        assertEquals(1L << 20, seen.get());
    }

    @Test
    void acceptsLongestNameAndRangesEndingAtTopOfRam() {
        String name = "a".repeat(31);
        add(name, UPPER);
        memory.write(RAM - 3, "abc".getBytes(StandardCharsets.US_ASCII));
        block(BLOCK, name, RAM - 3, 3, RAM - 3, 3);  // result overwrites the argument in place
        assertEquals(HostCalls.OK, calls.handle(context(memory), BLOCK));
        assertEquals("ABC", new String(memory.read(RAM - 3, 3), StandardCharsets.US_ASCII));
    }

    @Test
    void acceptsBlockAtTheLastAlignedPlaceInRam() {
        long at = RAM - 88;
        assertEquals(0, at % 8);
        argument("x");
        block(at, "upper", ARG, 1, RET, 1);
        assertEquals(HostCalls.OK, calls.handle(context(memory), at));
        assertEquals(0, memory.readInt(at + 8));
        assertEquals(1, memory.readLong(at + 80));
    }

    @Test
    void unknownNameIsEnoent() {
        block(BLOCK, "lower", ARG, 0, RET, 0);
        assertEquals(HostCalls.ENOENT, calls.handle(context(memory), BLOCK));
        assertEquals(HostCalls.ENOENT, status());
        assertEquals(0, retLen());
    }

    @Test
    void removedFunctionIsEnoentAndOnlyTheSameInstanceIsRemoved() {
        block(BLOCK, "upper", ARG, 0, RET, 0);
        calls.remove("upper", (a, r) -> 0);  // another instance: ignored
        assertEquals(HostCalls.OK, calls.handle(context(memory), BLOCK));
        calls.remove("upper", UPPER);
        assertEquals(HostCalls.ENOENT, calls.handle(context(memory), BLOCK));
        assertTrue(calls.functions().isEmpty());
    }

    @Test
    void functionsIsASnapshot() {
        Map<String, HostFunction> snapshot = calls.functions();
        add("later", UPPER);
        assertEquals(Map.of("upper", UPPER), snapshot);
        assertThrows(UnsupportedOperationException.class, () -> snapshot.put("x", UPPER));
    }

    @Test
    void badMagicIsEinval() {
        rawBlock(BLOCK, 0x4348584f, 1, name("upper"), ARG, 0, RET, 0);
        assertEquals(HostCalls.EINVAL, calls.handle(context(memory), BLOCK));
        assertEquals(HostCalls.EINVAL, status());
    }

    @ParameterizedTest
    @ValueSource(ints = {0, 2, 0xffff, 0x101})
    void badVersionIsEinval(int version) {
        rawBlock(BLOCK, 0x4348584e, version, name("upper"), ARG, 0, RET, 0);
        assertEquals(HostCalls.EINVAL, calls.handle(context(memory), BLOCK));
        assertEquals(HostCalls.EINVAL, status());
    }

    @Test
    void emptyNameIsEinval() {
        rawBlock(BLOCK, 0x4348584e, 1, new byte[32], ARG, 0, RET, 0);
        assertEquals(HostCalls.EINVAL, calls.handle(context(memory), BLOCK));
        assertEquals(HostCalls.EINVAL, status());
        assertEquals(0, retLen());
    }

    @Test
    void unterminatedThirtyTwoByteNameIsEinval() {
        String name = "b".repeat(32);
        add(name, UPPER);
        add(name.substring(0, 31), UPPER);
        rawBlock(BLOCK, 0x4348584e, 1, name(name), ARG, 0, RET, 0);
        assertEquals(HostCalls.EINVAL, calls.handle(context(memory), BLOCK));
        assertEquals(HostCalls.EINVAL, status());
    }

    @ParameterizedTest
    @ValueSource(strings = {"upp\u00e9r", "\u00ffupper", "up per", "up\tper", "up\u007fper", "\u0001"})
    void nonPrintableOrNonAsciiNameIsEinval(String name) {
        add(name, UPPER);
        block(BLOCK, name, ARG, 0, RET, 0);
        assertEquals(HostCalls.EINVAL, calls.handle(context(memory), BLOCK));
        assertEquals(HostCalls.EINVAL, status());
    }

    @ParameterizedTest
    @ValueSource(longs = {BLOCK + 1, BLOCK + 4, BLOCK + 7, 1, Long.MAX_VALUE})
    void misalignedBlockIsEinvalAndWritesNothing(long at) {
        if (at < RAM) {
            block(at, "upper", ARG, 0, RET, 0);
        }
        byte[] before = ram.clone();
        assertEquals(HostCalls.EINVAL, calls.handle(context(memory), at));
        assertArrayEquals(before, ram);
    }

    @ParameterizedTest
    @ValueSource(longs = {RAM - 80, RAM - 8, RAM, RAM + 8, -8, Long.MIN_VALUE, Long.MAX_VALUE - 7, 0x7fff_ffff_ffff_ff00L})
    void blockOutsideRamIsEinvalAndWritesNothing(long at) {
        if (at >= 0 && at < RAM) {
            memory.writeInt(at, 0x4348584e);
            memory.writeShort(at + 4, (short) 1);
        }
        byte[] before = ram.clone();
        assertEquals(HostCalls.EINVAL, calls.handle(context(memory), at));
        assertArrayEquals(before, ram);
    }

    @ParameterizedTest
    @CsvSource({
            // arg_gpa, arg_len, ret_gpa, ret_cap
            "2097152, 1, 24576, 16",                                  // argument starts at the end of RAM
            "2097151, 2, 24576, 16",                                  // argument runs one byte past
            "-1, 1, 24576, 16",
            "-9223372036854775808, 16, 24576, 16",
            "9223372036854775807, 1, 24576, 16",
            "9223372036854775800, 16, 24576, 16",                     // arg_gpa + arg_len overflows
            "20480, 4, 2097152, 1",                                   // result outside
            "20480, 4, 2097150, 3",
            "20480, 4, 24576, 2097153",
            "20480, 4, 24576, 9223372036854775807",                   // ret_gpa + ret_cap overflows
            "20480, 4, 9223372036854775807, 9223372036854775807",
            "20480, 4, -9223372036854775808, 1",
            "20480, 4, 24576, -1",                                    // ret_cap negative as s64: huge as u64
            "20480, 4, 24576, -9223372036854775808",
    })
    void rangeOutsideRamIsEfault(long argGpa, long argLen, long retGpa, long retCap) {
        AtomicReference<Boolean> called = new AtomicReference<>(false);
        add("spy", (a, r) -> {
            called.set(true);
            return 0;
        });
        block(BLOCK, "spy", argGpa, argLen, retGpa, retCap);
        assertEquals(HostCalls.EFAULT, calls.handle(context(memory), BLOCK));
        assertEquals(HostCalls.EFAULT, status());
        assertEquals(0, retLen());
        assertFalse(called.get(), "the function must not run");
    }

    @ParameterizedTest
    @ValueSource(longs = {(1 << 20) + 1, 2 << 20, Long.MAX_VALUE, -1, Long.MIN_VALUE})
    void argumentOverOneMibIsE2big(long argLen) {
        block(BLOCK, "upper", 0, argLen, RET, 16);
        assertEquals(HostCalls.E2BIG, calls.handle(context(memory), BLOCK));
        assertEquals(HostCalls.E2BIG, status());
        assertEquals(0, retLen());
    }

    @Test
    void resultLargerThanCapacityIsE2big() {
        argument("hello");
        block(BLOCK, "upper", ARG, 5, RET, 4);
        assertEquals(HostCalls.E2BIG, calls.handle(context(memory), BLOCK));
        assertEquals(HostCalls.E2BIG, status());
        assertEquals(0, retLen());
        assertEquals((byte) 0, ram[(int) RET + 4], "nothing written past ret_cap");
    }

    @ParameterizedTest
    @ValueSource(longs = {-1, Long.MIN_VALUE, 17, Long.MAX_VALUE})
    void functionClaimingImpossibleLengthIsE2big(long claimed) {
        add("liar", (a, r) -> claimed);
        block(BLOCK, "liar", ARG, 0, RET, 16);
        assertEquals(HostCalls.E2BIG, calls.handle(context(memory), BLOCK));
        assertEquals(0, retLen());
    }

    @Test
    void functionThatThrowsIsEfail() {
        add("checked", (a, r) -> {
            throw new IOException("disk on fire");
        });
        add("unchecked", (a, r) -> {
            throw new IllegalStateException("bug");
        });
        add("linkage", (a, r) -> {
            throw new NoClassDefFoundError("org/example/Gone");
        });
        for (String name : new String[] {"checked", "unchecked", "linkage"}) {
            block(BLOCK, name, ARG, 4, RET, 16);
            assertEquals(HostCalls.EFAIL, calls.handle(context(memory), BLOCK), name);
            assertEquals(HostCalls.EFAIL, status());
            assertEquals(0, retLen());
        }
    }

    @Test
    void functionOverrunningTheResultSegmentIsEfail() {
        add("overrun", (a, r) -> {
            r.set(ValueLayout.JAVA_BYTE, r.byteSize(), (byte) 1);
            return 0;
        });
        block(BLOCK, "overrun", ARG, 0, RET, 8);
        assertEquals(HostCalls.EFAIL, calls.handle(context(memory), BLOCK));
        assertEquals(0, ram[(int) RET + 8]);
    }

    @Test
    void argumentIsReadOnlyAndResultHasTheGuestsCapacity() {
        argument("keep");
        AtomicReference<MemorySegment> arg = new AtomicReference<>();
        AtomicReference<MemorySegment> res = new AtomicReference<>();
        AtomicReference<RuntimeException> writeAttempt = new AtomicReference<>();
        add("probe", (a, r) -> {
            arg.set(a);
            res.set(r);
            try {
                a.set(ValueLayout.JAVA_BYTE, 0, (byte) 'X');
            } catch (RuntimeException e) {
                writeAttempt.set(e);
            }
            return 0;
        });
        block(BLOCK, "probe", ARG, 4, RET, 100);
        assertEquals(HostCalls.OK, calls.handle(context(memory), BLOCK));
        assertTrue(arg.get().isReadOnly());
        assertEquals(4, arg.get().byteSize());
        assertNotNull(writeAttempt.get(), "writing the argument must fail");
        assertEquals("keep", new String(memory.read(ARG, 4), StandardCharsets.US_ASCII));
        assertFalse(res.get().isReadOnly());
        assertEquals(100, res.get().byteSize());
    }

    @Test
    void functionWritingTheArgumentFailsTheCall() {
        argument("keep");
        add("vandal", (a, r) -> {
            a.fill((byte) 'X');
            return 0;
        });
        block(BLOCK, "vandal", ARG, 4, RET, 0);
        assertEquals(HostCalls.EFAIL, calls.handle(context(memory), BLOCK));
        assertEquals("keep", new String(memory.read(ARG, 4), StandardCharsets.US_ASCII));
    }

    @Test
    void nameIsReadUpToTheFirstNul() {
        byte[] raw = name("upper");
        raw[10] = 'z';  // after the terminator: ignored
        argument("q");
        rawBlock(BLOCK, 0x4348584e, 1, raw, ARG, 1, RET, 1);
        assertEquals(HostCalls.OK, calls.handle(context(memory), BLOCK));
    }

    @Test
    void readNameAcceptsPrintableAsciiOnly() {
        assertEquals("a.b-c_d/1", HostCalls.readName(name("a.b-c_d/1")));
        assertEquals("~!", HostCalls.readName(name("~!")));
        assertEquals(null, HostCalls.readName(new byte[32]));
        assertEquals(null, HostCalls.readName(name("x".repeat(32))));
        assertEquals(null, HostCalls.readName(name("a b")));
        assertEquals(null, HostCalls.readName(new byte[] {'a', (byte) 0x80, 0}));
    }

    /**
     * A hostile guest fills blocks with anything: {@code handle} must answer a
     * status and never throw, whatever the fields.
     */
    @Test
    void randomHostileBlocksNeverThrow() {
        long ramSize = 64 * 1024;
        byte[] small = new byte[(int) ramSize];
        GuestMemory m = GuestMemory.of(0, MemorySegment.ofArray(small));
        HostCalls hc = new HostCalls();
        hc.policy(new RecordingPolicy(r -> !r.method().equals("denied") && !r.method().equals("liar")));
        hc.add("upper", UPPER, false);
        hc.add("boom", (a, r) -> {
            throw new RuntimeException("boom");
        }, false);
        hc.add("liar", (a, r) -> a.byteSize() * 2 - 3, true);
        hc.add("fill", (a, r) -> {
            r.fill((byte) 0x41);
            return r.byteSize();
        }, false);
        String[] names = {"upper", "boom", "liar", "fill", "nope", "denied", "", "x".repeat(32), "upp\u00e9r"};
        long[] nasty = {0, 1, 7, 8, 88, 4096, ramSize - 88, ramSize - 1, ramSize, ramSize + 1, 1 << 20, (1 << 20) + 1,
                -1, -8, Long.MIN_VALUE, Long.MAX_VALUE, Long.MAX_VALUE - 7, 0xffff_ffffL};
        Random random = new Random(0xb10cL);
        int[] counts = new int[7];
        for (int i = 0; i < 10_000; i++) {
            if (random.nextInt(8) == 0) {
                random.nextBytes(small);
            }
            long at = random.nextInt(4) == 0 ? pick(random, nasty) : (random.nextLong(ramSize) & (random.nextInt(8) == 0 ? -1 : -8));
            if (m.contains(at, 88)) {
                ByteBufferWriter w = new ByteBufferWriter(m, at);
                w.fill(random, random.nextInt(4) == 0 ? random.nextInt() : 0x4348584e,
                        random.nextInt(8) == 0 ? random.nextInt(0x10000) : 1,
                        names[random.nextInt(names.length)],
                        random.nextBoolean() ? pick(random, nasty) : random.nextLong(ramSize),
                        random.nextBoolean() ? pick(random, nasty) : random.nextLong(4096),
                        random.nextBoolean() ? pick(random, nasty) : random.nextLong(ramSize),
                        random.nextBoolean() ? pick(random, nasty) : random.nextLong(4096));
            }
            byte[] before = small.clone();
            int status;
            try {
                status = hc.handle(context(m), at);
            } catch (RuntimeException | Error e) {
                fail("block " + i + " at 0x" + Long.toHexString(at) + " threw " + e, e);
                return;
            }
            assertTrue(status <= 0 && status >= HostCalls.EPERM, "status " + status);
            counts[-status]++;
            if ((at & 7) != 0 || !m.contains(at, 88)) {
                assertEquals(HostCalls.EINVAL, status);
                assertArrayEquals(before, small, "an unusable block is not written");
            } else {
                assertEquals(status, m.readInt(at + 8));
                if (status == HostCalls.OK) {
                    assertTrue(Long.compareUnsigned(m.readLong(at + 80), m.readLong(at + 72)) <= 0
                            || rangesOverlap(at, m), "ret_len within ret_cap");
                }
            }
        }
        for (int s = 0; s < counts.length; s++) {
            assertTrue(counts[s] > 0, "status " + (-s) + " never produced: " + Arrays.toString(counts));
        }
    }

    /** The result buffer may overlap the block itself, so the block's ret_cap can be overwritten by the function. */
    private static boolean rangesOverlap(long at, GuestMemory m) {
        long retGpa = m.readLong(at + 64);
        return retGpa < at + 88 && at < retGpa + 4096;
    }

    private static long pick(Random random, long[] values) {
        return values[random.nextInt(values.length)];
    }

    private static byte[] name(String text) {
        return Arrays.copyOf(text.getBytes(StandardCharsets.ISO_8859_1), 32);
    }

    /** Fills one block's fields in {@code m}. */
    private record ByteBufferWriter(GuestMemory m, long at) {
        void fill(Random random, int magic, int version, String name, long argGpa, long argLen, long retGpa, long retCap) {
            m.writeInt(at, magic);
            m.writeShort(at + 4, (short) version);
            m.writeShort(at + 6, (short) random.nextInt());
            m.writeInt(at + 8, random.nextInt());
            m.write(at + 16, name(name));
            m.writeLong(at + 48, argGpa);
            m.writeLong(at + 56, argLen);
            m.writeLong(at + 64, retGpa);
            m.writeLong(at + 72, retCap);
            m.writeLong(at + 80, random.nextLong());
        }
    }

    @Test
    void everyCallPassesThePolicyAsTheCallingVmsGuest() {
        argument("abc");
        block(BLOCK, "upper", ARG, 3, RET, 64);
        assertEquals(HostCalls.OK, calls.handle(context(memory), BLOCK));
        assertEquals(List.of(new CallRequest("sandbox", 0, "vm-7", "guest:vm-7", CallRequest.Direction.GUEST_TO_HOST,
                "hostfunction", "upper", false)), policy.checked);
    }

    @Test
    void aDeniedCallIsRefusedWithEpermAndNeverReachesTheFunction() {
        AtomicReference<String> reached = new AtomicReference<>();
        add("secret", (a, r) -> {
            reached.set("called");
            return 0;
        });
        calls.policy(new RecordingPolicy(r -> !r.method().equals("secret")));
        block(BLOCK, "secret", ARG, 0, RET, 64);
        assertEquals(HostCalls.EPERM, calls.handle(context(memory), BLOCK));
        assertEquals(HostCalls.EPERM, status());
        assertEquals(0, retLen());
        assertEquals(null, reached.get());
        argument("ok");
        block(BLOCK, "upper", ARG, 2, RET, 64);
        assertEquals(HostCalls.OK, calls.handle(context(memory), BLOCK), "the same policy lets another function through");
    }

    @Test
    void thePolicyDecidesBeforeTheLookupSoADeniedGuestCannotProbeForNames() {
        calls.policy(new RecordingPolicy(r -> false));
        block(BLOCK, "no-such-function", ARG, 0, RET, 64);
        assertEquals(HostCalls.EPERM, calls.handle(context(memory), BLOCK));
        calls.policy(RecordingPolicy.allowingAll());
        assertEquals(HostCalls.ENOENT, calls.handle(context(memory), BLOCK));
    }

    @Test
    void withNoPolicyEveryCallIsRefusedButAFunctionThatPolicesItself() {
        HostCalls bare = new HostCalls();
        bare.add("upper", UPPER, false);
        bare.add("self", UPPER, true);
        argument("abc");
        block(BLOCK, "upper", ARG, 3, RET, 64);
        assertEquals(HostCalls.EPERM, bare.handle(context(memory), BLOCK));
        block(BLOCK, "self", ARG, 3, RET, 64);
        assertEquals(HostCalls.OK, bare.handle(context(memory), BLOCK));
        assertEquals("ABC", result(3));
    }

    @Test
    void aPolicyThatGoesAwayLeavesCallsRefusedUnlessAnotherTookItsPlace() {
        RecordingPolicy second = RecordingPolicy.allowingAll();
        calls.policy(second);
        calls.removePolicy(policy);  // the old one leaving does not take the new one with it
        argument("abc");
        block(BLOCK, "upper", ARG, 3, RET, 64);
        assertEquals(HostCalls.OK, calls.handle(context(memory), BLOCK));
        calls.removePolicy(second);
        assertEquals(HostCalls.EPERM, calls.handle(context(memory), BLOCK));
    }
}
