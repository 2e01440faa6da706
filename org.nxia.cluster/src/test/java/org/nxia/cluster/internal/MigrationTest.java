package org.nxia.cluster.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.reflect.Proxy;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.Optional;
import java.util.function.Consumer;

import org.junit.jupiter.api.Test;
import org.nxia.cluster.api.GuestRequest;
import org.nxia.cluster.api.Moved;
import org.nxia.cluster.api.NodeAdmin;
import org.nxia.cluster.api.NodeStatus;
import org.nxia.cluster.api.VmSummary;
import org.nxia.vmm.api.LiveRam;
import org.nxia.vmm.api.VirtualMachine;
import org.nxia.vmm.api.VmManager;
import org.nxia.vmm.api.VmProfile;
import org.nxia.vmm.api.VmSnapshot;
import org.nxia.vmm.api.VmState;
import org.nxia.vmm.spi.HostPlacement;

/**
 * The source's side of a move, at the VM and node seams (stand-ins: no VM runs here; ClusterTest and
 * bench:cluster move real ones): pre-copy sends every touched page but zeros first, then the pages
 * written since, round after round until few are left or the rounds stop shrinking them, then the
 * last ones with the VM paused; what the target gathers is the source's RAM; and each reason for
 * stop-and-copy, and a failure that leaves the VM running here.
 */
class MigrationTest {

    private static final int PAGES = 1024;   // 4 MiB: more than Migration.FEW_PAGES
    private static final long PAGE = LiveRam.PAGE;

    private final MemorySegment ram = MemorySegment.ofArray(new byte[(int) (PAGES * PAGE)]);
    /** What each call of written() reports after it has "run the guest": pages it writes, in order. */
    private final Deque<int[]> rounds = new ArrayDeque<>();
    private final List<String> calls = new ArrayList<>();
    private VmState state = VmState.RUNNING;
    private VmProfile profile = VmProfile.of(Path.of("/kit/memfill.elf")).withMemory(PAGES * PAGE);
    private RuntimeException liveRamRefusal;
    private boolean destroyed;

    private final Target target = new Target();

    /** Guest writes: page p gets a byte that says which round wrote it. */
    private void write(int[] pages, int round) {
        for (int p : pages) {
            ram.set(ValueLayout.JAVA_BYTE, p * PAGE + (p % 2 == 0 ? 0 : 7), (byte) round);   // some at a page's first byte
        }
    }

    private static int[] range(int from, int to) {
        return java.util.stream.IntStream.range(from, to).toArray();
    }

    private LiveRam live() {
        return new LiveRam() {
            private boolean first = true;
            private int round;

            @Override
            public long bytes() {
                return ram.byteSize();
            }

            @Override
            public long written(long[] bitmap) {
                calls.add("written" + (state == VmState.PAUSED ? " paused" : ""));
                int[] pages = first ? range(0, PAGES) : rounds.removeFirst();
                if (!first) {
                    write(pages, ++round);
                }
                first = false;
                for (int p : pages) {
                    bitmap[p >>> 6] |= 1L << p;
                }
                return pages.length;
            }

            @Override
            public void read(long address, MemorySegment into) {
                into.copyFrom(ram.asSlice(address, into.byteSize()));
            }

            @Override
            public VmSnapshot state() {
                assertEquals(VmState.PAUSED, state, "the state is saved once the VM is paused");
                return TestSnapshots.of(profile, List.of());
            }

            @Override
            public void close() {
                calls.add("closed");
            }
        };
    }

    private VirtualMachine vm() {
        return (VirtualMachine) Proxy.newProxyInstance(getClass().getClassLoader(), new Class<?>[] {VirtualMachine.class},
                (p, m, a) -> switch (m.getName()) {
                    case "id" -> "vm-1";
                    case "spec" -> profile;
                    case "state" -> state;
                    case "pause" -> {
                        calls.add("pause");
                        state = VmState.PAUSED;
                        yield null;
                    }
                    case "resume" -> {
                        calls.add("resume");
                        state = VmState.RUNNING;
                        yield null;
                    }
                    case "liveRam" -> {
                        if (liveRamRefusal != null) {
                            throw liveRamRefusal;
                        }
                        yield live();
                    }
                    case "snapshot" -> TestSnapshots.of(profile, TestSnapshots.page(5));
                    default -> throw new AssertionError("Migration asked the VM for " + m.getName());
                });
    }

    private VmManager vms() {
        VirtualMachine vm = vm();
        return (VmManager) Proxy.newProxyInstance(getClass().getClassLoader(), new Class<?>[] {VmManager.class},
                (p, m, a) -> switch (m.getName()) {
                    case "find" -> destroyed ? Optional.empty() : Optional.of(vm);
                    case "destroy" -> {
                        destroyed = true;
                        yield true;
                    }
                    default -> throw new AssertionError("Migration asked the manager for " + m.getName());
                });
    }

    /** The target node: gathers RAM pages and a state or snapshot file, as NodeAdminService does. */
    private static class Target implements NodeAdmin {
        final byte[] ram = new byte[(int) (PAGES * PAGE)];
        final List<Integer> pagesPerCall = new ArrayList<>();
        final ByteArrayOutputStream file = new ByteArrayOutputStream();
        long pagesSent;
        String restored;
        Consumer<String> onRestore = how -> { };
        final List<String> discarded = new ArrayList<>();
        RuntimeException onReceivePages;
        RuntimeException onReceive;

        @Override
        public String openRam(long ramBytes) {
            assertEquals(PAGES * PAGE, ramBytes);
            return "ram-1";
        }

        @Override
        public void receivePages(String id, long[] addresses, byte[] pages) {
            assertEquals("ram-1", id);
            if (onReceivePages != null) {
                throw onReceivePages;
            }
            assertEquals(addresses.length * PAGE, pages.length);
            assertTrue(pages.length <= MAX_PIECE);
            for (int i = 0; i < addresses.length; i++) {
                System.arraycopy(pages, (int) (i * PAGE), ram, (int) addresses[i], (int) PAGE);
            }
            pagesPerCall.add(addresses.length);
            pagesSent += addresses.length;
        }

        @Override
        public String openTransfer(long length) {
            file.reset();
            return "file-1";
        }

        @Override
        public void receive(String transfer, long offset, byte[] piece) {
            if (onReceive != null) {
                throw onReceive;
            }
            assertEquals(file.size(), offset);
            file.writeBytes(piece);
        }

        @Override
        public VmSummary restore(String transfer) {
            onRestore.accept("stop-and-copy");
            restored = "file";
            return new VmSummary("b", "vm-7", "memfill", "running", PAGES * PAGE, "");
        }

        @Override
        public VmSummary restore(String transfer, String ram) {
            assertEquals("file-1", transfer);
            assertEquals("ram-1", ram);
            onRestore.accept("pre-copy");
            restored = "ram";
            return new VmSummary("b", "vm-7", "memfill", "running", PAGES * PAGE, "");
        }

        @Override
        public void discard(String transfer) {
            discarded.add(transfer);
        }

        @Override
        public NodeStatus status() {
            throw new AssertionError();
        }

        @Override
        public List<VmSummary> vms() {
            throw new AssertionError();
        }

        @Override
        public VmSummary create(GuestRequest request) {
            throw new AssertionError();
        }

        @Override
        public VmSummary start(String vmId) {
            throw new AssertionError();
        }

        @Override
        public VmSummary info(String vmId) {
            throw new AssertionError();
        }

        @Override
        public String console(String vmId, int maxChars) {
            throw new AssertionError();
        }

        @Override
        public boolean destroy(String vmId) {
            throw new AssertionError();
        }

        @Override
        public Moved migrate(String vmId, String target) {
            throw new AssertionError();
        }
    }

    @Test
    void preCopySendsTouchedPagesThenWhatWasWrittenUntilTheRoundsStopShrinkingThenTheRestPaused() throws Exception {
        write(range(0, 10), 100);                 // touched before: 10 pages hold data, the rest is zeros
        rounds.add(range(0, 600));                // round 1 writes 600 pages: more than FEW_PAGES
        rounds.add(range(0, 300));                // round 2: 300, fewer
        rounds.add(range(0, 400));                // round 3: not fewer than 300: the guest writes as fast as they go
        rounds.add(new int[] {5, 999});           // while paused: the last ones
        Moved m = Migration.move(vms(), "vm-1", "b", target, true);

        assertEquals("pre-copy, 3 rounds while it ran", m.how());
        assertEquals(List.of("written", "written", "written", "written", "pause", "written paused", "closed"), calls);
        // round 3's 400 and the paused 5 and 999 go together: page 5 once
        assertEquals(10 + 600 + 300 + 401, target.pagesSent, "zero pages skipped in the first round only");
        assertEquals((10 + 600 + 300) * PAGE, m.sentWhileRunning(), "round 3's pages go with the VM paused");
        assertEquals((10 + 600 + 300 + 401) * PAGE + target.file.size(), m.bytes(), "the pages and the state file");
        assertTrue(target.pagesPerCall.stream().allMatch(n -> n > 0 && n <= Migration.BATCH_PAGES), target.pagesPerCall.toString());
        assertTrue(target.pagesPerCall.contains(600), "a round's pages go in pieces of up to 1,024, not one by one: " + target.pagesPerCall);
        assertArrayEquals(ram.toArray(ValueLayout.JAVA_BYTE), target.ram, "the target holds the source's RAM");
        assertEquals("ram", target.restored);
        assertTrue(target.file.size() > 0);
        assertTrue(destroyed, "the source's copy goes once the target has it");
        assertFalse(m.downtime().isNegative());
        assertTrue(m.total().compareTo(m.downtime()) >= 0);
        assertTrue(m.total().compareTo(java.time.Duration.ofMinutes(1)) < 0, "times from the clock, not sums: " + m.total());
        assertEquals("vm-7", m.to().id());
    }

    @Test
    void theFirstTwoRoundsRunEvenIfTheSecondDoesNotShrinkAndARoundNoSmallerThanTheBestEndsThem() throws Exception {
        rounds.add(range(0, 600));
        rounds.add(range(0, 700));   // more: but the first two rounds run anyway
        rounds.add(range(0, 650));   // fewer than 700, not fewer than 600: the rounds end
        rounds.add(new int[] {1});
        assertEquals("pre-copy, 3 rounds while it ran", Migration.move(vms(), "vm-1", "b", target, true).how());
        assertArrayEquals(ram.toArray(ValueLayout.JAVA_BYTE), target.ram);

        destroyed = false;
        state = VmState.RUNNING;
        rounds.add(range(0, 600));
        rounds.add(range(0, 300));
        rounds.add(range(0, 300));   // as few as the best so far: not shrinking
        rounds.add(new int[] {1});
        assertEquals("pre-copy, 3 rounds while it ran", Migration.move(vms(), "vm-1", "b", target, true).how());
    }

    @Test
    void fewPagesLeftEndsTheRoundsAtOnce() throws Exception {
        rounds.add(range(0, (int) Migration.FEW_PAGES));
        rounds.add(new int[] {1});
        Moved m = Migration.move(vms(), "vm-1", "b", target, true);
        assertEquals("pre-copy, 1 round while it ran", m.how());
        assertEquals(Migration.FEW_PAGES, target.pagesSent, "no zero page in the first round; page 1 once");
        assertArrayEquals(ram.toArray(ValueLayout.JAVA_BYTE), target.ram);
    }

    @Test
    void aGuestThatWritesEverythingStopsAfterTheLastRound() throws Exception {
        for (int i = 0; i < Migration.MAX_ROUNDS; i++) {
            rounds.add(range(0, PAGES - i));   // shrinking, but never to FEW_PAGES
        }
        rounds.add(range(0, 3));
        Moved m = Migration.move(vms(), "vm-1", "b", target, true);
        assertEquals("pre-copy, " + Migration.MAX_ROUNDS + " rounds while it ran", m.how());
        assertTrue(target.pagesPerCall.contains(Migration.BATCH_PAGES) && !target.pagesPerCall.contains(0), target.pagesPerCall.toString());
        assertArrayEquals(ram.toArray(ValueLayout.JAVA_BYTE), target.ram);
    }

    @Test
    void aFailedMoveResumesTheVmHereAndKeepsIt() {
        rounds.add(new int[] {1});
        rounds.add(new int[] {2});
        target.onRestore = how -> {
            throw new IllegalArgumentException("node b refused the incoming VM: no room");
        };
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> Migration.move(vms(), "vm-1", "b", target, true));
        assertEquals("moving vm-1 to node b failed, and vm-1 goes on here: IllegalArgumentException: node b refused the incoming VM: no room", e.getMessage());
        assertEquals(VmState.RUNNING, state);
        assertEquals("resume", calls.get(calls.size() - 2), "resumed, then the reader closed: " + calls);
        assertFalse(destroyed);
        assertEquals(List.of("ram-1", "file-1"), target.discarded, "the target is told to drop what it holds at once");
    }

    @Test
    void aStopAndCopyMoveThatFailsTellsTheTargetToDropTheFileWhetherItCameOrNot() {
        target.onReceive = new IllegalStateException("node b could not store the incoming VM: No space left on device");
        assertThrows(IllegalStateException.class, () -> Migration.move(vms(), "vm-1", "b", target, false));
        assertEquals(List.of("file-1"), target.discarded, "a file that stopped midway");
        assertEquals(VmState.RUNNING, state);

        target.onReceive = null;
        target.discarded.clear();
        target.onRestore = how -> {
            throw new IllegalArgumentException("node b refused the incoming VM: no room");
        };
        assertThrows(IllegalStateException.class, () -> Migration.move(vms(), "vm-1", "b", target, false));
        assertEquals(List.of("file-1"), target.discarded, "a file the target refused (or never answered for)");
        assertEquals(VmState.RUNNING, state);
        assertFalse(destroyed);
    }

    @Test
    void aTargetThatFailsMidwayIsToldToDropTheRamEvenIfItCannotBeReached() {
        write(range(0, 10), 100);
        target.onReceivePages = new IllegalStateException("node b could not store the incoming VM's RAM: No space left on device");
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> Migration.move(vms(), "vm-1", "b", target, true));
        assertTrue(e.getMessage().endsWith("No space left on device"), e.getMessage());
        assertEquals(List.of("ram-1"), target.discarded, "no state file was opened yet");
        assertEquals(VmState.RUNNING, state, "it never paused");
        assertFalse(calls.contains("pause"));

        Target gone = new Target() {
            @Override
            public void discard(String transfer) {
                throw new IllegalStateException("node b stopped answering");
            }
        };
        gone.onRestore = how -> {
            throw new IllegalStateException("node b stopped answering");
        };
        destroyed = false;
        IllegalStateException unreachable = assertThrows(IllegalStateException.class,
                () -> Migration.move(vms(), "vm-1", "b", gone, false));
        assertTrue(unreachable.getMessage().contains("goes on here: IllegalStateException: node b stopped answering"),
                "the move's own failure is what is said: " + unreachable.getMessage());
        assertEquals(VmState.RUNNING, state, "resumed");
    }

    @Test
    void stopAndCopyWhenAskedWhenItDoesNotRunWhenItsRamIsPlacedOrCannotBeReadLive() throws Exception {
        Moved asked = Migration.move(vms(), "vm-1", "b", target, false);
        assertEquals("stop-and-copy (as asked)", asked.how());
        assertEquals(0, asked.sentWhileRunning());
        assertEquals("file", target.restored);
        assertEquals(List.of("pause"), calls, "paused, then saved whole");
        assertEquals(target.file.size(), asked.bytes());
        assertTrue(asked.downtime().compareTo(java.time.Duration.ofMinutes(1)) < 0 && !asked.downtime().isNegative(), asked.downtime().toString());
        assertTrue(asked.total().compareTo(asked.downtime()) >= 0 && asked.total().compareTo(java.time.Duration.ofMinutes(1)) < 0);

        destroyed = false;
        state = VmState.PAUSED;
        assertEquals("stop-and-copy (it does not run)", Migration.move(vms(), "vm-1", "b", target, true).how());

        destroyed = false;
        state = VmState.RUNNING;
        profile = profile.withPlacement(new HostPlacement(List.of(), true, true));
        assertTrue(Migration.move(vms(), "vm-1", "b", target, true).how().startsWith("stop-and-copy (its RAM is placed"));

        destroyed = false;
        state = VmState.RUNNING;
        profile = profile.withPlacement(HostPlacement.NONE);
        liveRamRefusal = new UnsupportedOperationException("vm-1 has devices, whose writes to its RAM are not all recorded");
        assertEquals("stop-and-copy (vm-1 has devices, whose writes to its RAM are not all recorded)",
                Migration.move(vms(), "vm-1", "b", target, true).how());
        assertEquals(0, target.pagesSent, "no page went by itself");
    }

    @Test
    void aStoppedOrGoneVmDoesNotMove() {
        state = VmState.STOPPED;
        assertEquals("vm-1 is stopped: only a created, running or paused VM moves",
                assertThrows(IllegalArgumentException.class, () -> Migration.move(vms(), "vm-1", "b", target, true)).getMessage());
        destroyed = true;
        assertEquals("no VM vm-1 on this node (vm:list)",
                assertThrows(IllegalArgumentException.class, () -> Migration.move(vms(), "vm-1", "b", target, true)).getMessage());
    }
}
