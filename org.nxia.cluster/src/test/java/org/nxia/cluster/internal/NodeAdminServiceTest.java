package org.nxia.cluster.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.reflect.Proxy;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nxia.cluster.api.GuestRequest;
import org.nxia.cluster.api.NodeAdmin;
import org.nxia.cluster.api.VmSummary;
import org.nxia.shell.support.GuestKit;
import org.nxia.shell.support.VmSnapshotFile;
import org.nxia.vmm.api.VirtualMachine;
import org.nxia.vmm.api.VmSnapshot;
import org.nxia.vmm.spi.RamFile;
import org.nxia.vmm.api.VmManager;
import org.nxia.vmm.api.VmProfile;
import org.nxia.vmm.api.VmState;
import org.osgi.framework.BundleContext;
import org.osgi.framework.ServiceRegistration;

/**
 * What another node may ask of this one, checked as a peer's input: transfers bounded and filled
 * in order, VMs made for others bounded, guests by kit name only, this node's own VMs out of reach.
 * The VMs are stand-ins at the VmManager seam (no test here claims to run a VM; ClusterTest does,
 * on KVM, through real nodes).
 */
class NodeAdminServiceTest {

    @TempDir
    Path kit;

    private String kitBefore;
    private final Map<String, VirtualMachine> made = new ConcurrentHashMap<>();
    private final java.util.concurrent.atomic.AtomicInteger ids = new java.util.concurrent.atomic.AtomicInteger();
    private final List<String> registrations = new ArrayList<>();
    private NodeAdminService node;
    private final List<RamFile> cloned = new ArrayList<>();
    private final List<byte[]> clonedContent = new ArrayList<>();

    @BeforeEach
    void node() throws Exception {
        kitBefore = System.getProperty(GuestKit.PROPERTY);
        System.setProperty(GuestKit.PROPERTY, kit.toString());
        Files.write(kit.resolve("hello.elf"), new byte[] {0x7f, 'E', 'L', 'F'});
        node = new NodeAdminService(context(), vms(), new Nodes(), config("b"));
    }

    @AfterEach
    void restoreKit() {
        node.deactivate();
        if (kitBefore == null) {
            System.clearProperty(GuestKit.PROPERTY);
        } else {
            System.setProperty(GuestKit.PROPERTY, kitBefore);
        }
    }

    private static NodeAdminService.Config config(String name) {
        return (NodeAdminService.Config) Proxy.newProxyInstance(NodeAdminServiceTest.class.getClassLoader(),
                new Class<?>[] {NodeAdminService.Config.class}, (p, m, a) -> switch (m.getName()) {
                    case "node" -> name;
                    case "assembly" -> "cluster";
                    default -> null;
                });
    }

    private BundleContext context() {
        return (BundleContext) Proxy.newProxyInstance(getClass().getClassLoader(), new Class<?>[] {BundleContext.class},
                (p, m, a) -> switch (m.getName()) {
                    case "registerService" -> {
                        registrations.add(String.valueOf(((java.util.Dictionary<?, ?>) a[2]).get(NodeAdmin.NODE)));
                        yield Proxy.newProxyInstance(getClass().getClassLoader(), new Class<?>[] {ServiceRegistration.class},
                                (r, rm, ra) -> null);
                    }
                    case "createFilter" -> org.osgi.framework.FrameworkUtil.createFilter((String) a[0]);
                    default -> null;
                });
    }

    /** A VM stand-in: an id, a micro-VM profile and a state. */
    private VirtualMachine vm(String id, VmProfile profile) {
        return (VirtualMachine) Proxy.newProxyInstance(getClass().getClassLoader(), new Class<?>[] {VirtualMachine.class},
                (p, m, a) -> switch (m.getName()) {
                    case "id" -> id;
                    case "spec" -> profile;
                    case "state" -> VmState.CREATED;
                    case "result" -> Optional.empty();
                    case "console" -> "console of " + id;
                    case "hashCode" -> System.identityHashCode(p);
                    case "equals" -> p == a[0];
                    default -> null;
                });
    }

    private VmManager vms() {
        return (VmManager) Proxy.newProxyInstance(getClass().getClassLoader(), new Class<?>[] {VmManager.class},
                (p, m, a) -> switch (m.getName()) {
                    case "create" -> {
                        String id = "vm-" + ids.incrementAndGet();
                        VirtualMachine vm = vm(id, (VmProfile) a[0]);
                        made.put(id, vm);
                        yield vm;
                    }
                    case "clone" -> {
                        cloned.add((RamFile) a[1]);
                        clonedContent.add(Files.readAllBytes(((RamFile) a[1]).file()));
                        String id = "vm-" + ids.incrementAndGet();
                        VirtualMachine vm = vm(id, (VmProfile) ((VmSnapshot) a[0]).spec());
                        made.put(id, vm);
                        yield vm;
                    }
                    case "find" -> Optional.ofNullable(made.get((String) a[0]));
                    case "list" -> List.copyOf(made.values());
                    case "destroy" -> made.remove((String) a[0]) != null;
                    default -> null;
                });
    }

    @Test
    void theNodeRegistersItselfForExportByName() {
        assertEquals(List.of("b"), registrations);
    }

    @Test
    void aTransferIsBoundedAndFilledInOrder() {
        for (long bad : new long[] {0, -1, NodeAdminService.MAX_TRANSFER_BYTES + 1}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> node.openTransfer(bad));
            assertEquals("a VM of " + bad + " bytes: node b takes 1 byte to 4096 MiB", e.getMessage());
        }
        String t = node.openTransfer(10);
        assertTrue(assertThrows(IllegalArgumentException.class, () -> node.receive("nope", 0, new byte[1])).getMessage()
                .startsWith("node b has no incoming VM nope"));
        assertThrows(IllegalArgumentException.class, () -> node.receive(null, 0, new byte[1]));
        for (byte[] bad : new byte[][] {null, new byte[0], new byte[NodeAdmin.MAX_PIECE + 1]}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> node.receive(t, 0, bad));
            assertEquals("a piece is 1 byte to 4 MiB", e.getMessage());
        }
        IllegalArgumentException gap = assertThrows(IllegalArgumentException.class, () -> node.receive(t, 4, new byte[2]));
        assertEquals("piece at 4 (2 bytes): expected one at 0 within 10 bytes", gap.getMessage());
        assertThrows(IllegalArgumentException.class, () -> node.receive(t, 0, new byte[11]), "past the announced length");
        node.receive(t, 0, new byte[6]);
        node.receive(t, 6, new byte[4]);
        assertThrows(IllegalArgumentException.class, () -> node.receive(t, 10, new byte[1]), "the whole file came already");

        String half = node.openTransfer(10);
        node.receive(half, 0, new byte[6]);
        assertEquals("the incoming VM has 6 of its 10 bytes",
                assertThrows(IllegalArgumentException.class, () -> node.restore(half)).getMessage());
        assertTrue(assertThrows(IllegalArgumentException.class, () -> node.restore(half)).getMessage().startsWith("node b has no incoming VM"),
                "a refused transfer is dropped");

        IllegalArgumentException garbage = assertThrows(IllegalArgumentException.class, () -> node.restore(t));
        assertTrue(garbage.getMessage().startsWith("node b refused the incoming VM: "), garbage.getMessage());
        assertTrue(made.isEmpty(), "nothing was restored");
    }

    /** A paused micro-VM's state as a pre-copy move sends it: a snapshot file with no RAM of its own. */
    private Path stateFile(long memory, boolean withRam) throws Exception {
        VmSnapshot s = TestSnapshots.of(VmProfile.of(kit.resolve("hello.elf")).withMemory(memory), withRam ? TestSnapshots.page(3) : List.of());
        Path file = kit.resolve("state-" + withRam + "-" + ids.incrementAndGet());
        VmSnapshotFile.write(s, file, null);
        return file;
    }

    private String sent(Path file) throws Exception {
        byte[] bytes = Files.readAllBytes(file);
        String t = node.openTransfer(bytes.length);
        node.receive(t, 0, bytes);
        return t;
    }

    private static byte[] pages(int n, int fill) {
        byte[] b = new byte[n * 4096];
        java.util.Arrays.fill(b, (byte) fill);
        return b;
    }

    @Test
    void incomingRamIsPagesOfItsSizeAndTheVmIsClonedOverThePagesThatCame() throws Exception {
        long memory = 2 << 20;
        for (long bad : new long[] {0, -4096, 4097, NodeAdminService.MAX_TRANSFER_BYTES + 4096}) {
            assertThrows(IllegalArgumentException.class, () -> node.openRam(bad), "RAM of " + bad);
        }
        assertTrue(Files.isDirectory(Path.of("/dev/shm")) && Files.getFileStore(Path.of("/dev/shm")).type().equals("tmpfs")
                ? NodeAdminService.ramDirectory().equals(Path.of("/dev/shm"))
                : NodeAdminService.ramDirectory().equals(Path.of(System.getProperty("java.io.tmpdir"))), "RAM waits in memory where it can");
        node.openRam(NodeAdminService.MAX_TRANSFER_BYTES);   // the largest RAM a node takes
        String ram = node.openRam(memory);
        assertTrue(assertThrows(IllegalArgumentException.class, () -> node.receive(ram, 0, new byte[1])).getMessage()
                .startsWith("node b has no incoming VM"), "RAM takes pages, not pieces of a file");
        String many = "pages come one 4 KiB page per address, 1 to 1024 at a time";
        assertEquals(many, assertThrows(IllegalArgumentException.class, () -> node.receivePages(ram, new long[0], new byte[0])).getMessage());
        assertEquals(many, assertThrows(IllegalArgumentException.class, () -> node.receivePages(ram, new long[] {0}, new byte[4095])).getMessage());
        assertEquals(many, assertThrows(IllegalArgumentException.class, () -> node.receivePages(ram, null, new byte[4096])).getMessage());
        assertEquals(many, assertThrows(IllegalArgumentException.class,
                () -> node.receivePages(ram, new long[1025], new byte[1025 * 4096])).getMessage());
        for (long bad : new long[] {-4096, 4095, memory, Long.MAX_VALUE & ~4095L}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> node.receivePages(ram, new long[] {bad}, pages(1, 1)));
            assertEquals("0x%x is not a page of the incoming VM's 2 MiB of RAM".formatted(bad), e.getMessage());
        }
        assertThrows(IllegalArgumentException.class, () -> node.receivePages("nope", new long[] {0}, pages(1, 1)));

        node.receivePages(ram, new long[1024], new byte[1024 * 4096]);   // a whole piece: page 0, 1024 times
        node.receivePages(ram, new long[] {memory - 4096}, pages(1, 4));   // the last page
        node.receivePages(ram, new long[] {0}, new byte[4096]);
        node.receivePages(ram, new long[] {0x3000, 0x1000}, pages(2, 5));
        node.receivePages(ram, new long[] {0x2000, 0x1000, 0x10000}, pages(3, 9));   // 0x1000 again: the later one holds
        VmSummary vm = node.restore(sent(stateFile(memory, false)), ram);
        assertTrue(made.containsKey(vm.id()), "the clone is the VM restored");
        RamFile file = cloned.getFirst();
        assertEquals(memory, file.ramBytes());
        assertEquals(List.of(new RamFile.Extent(0, 0, 0x4000), new RamFile.Extent(0x10000, 0x10000, 0x1000),
                new RamFile.Extent(memory - 4096, memory - 4096, 4096)), file.extents());
        assertEquals(NodeAdminService.ramDirectory(), file.file().getParent(), "gathered where RAM is memory");
        byte[] content = clonedContent.getFirst();
        assertEquals(9, content[0x1000]);
        assertEquals(9, content[0x2fff]);
        assertEquals(5, content[0x3000]);
        assertEquals(9, content[0x10fff]);
        assertEquals(4, content[(int) memory - 1]);
        assertEquals(0, content[0x0fff], "page 0 as sent last");
        assertEquals(memory, content.length, "nothing past the last page that came");
        assertTrue(Files.notExists(file.file()), "the RAM file goes once mapped");
        assertTrue(assertThrows(IllegalArgumentException.class, () -> node.receivePages(ram, new long[] {0}, pages(1, 1))).getMessage()
                .startsWith("node b has no incoming VM"), "restored, the RAM is gone");
    }

    @Test
    void aStateWithRamOfItsOwnOrOfAnotherSizeIsRefusedAndBothAreDropped() throws Exception {
        String ram = node.openRam(4 << 20);
        String t = sent(stateFile(2 << 20, false));
        IllegalArgumentException size = assertThrows(IllegalArgumentException.class, () -> node.restore(t, ram));
        assertEquals("the incoming VM has 2 MiB of RAM; 4 MiB came", size.getMessage());
        assertThrows(IllegalArgumentException.class, () -> node.receivePages(ram, new long[] {0}, pages(1, 1)), "the RAM went too");

        String ram2 = node.openRam(2 << 20);
        String withRam = sent(stateFile(2 << 20, true));
        assertEquals("the incoming VM's state holds RAM of its own; its RAM came page by page",
                assertThrows(IllegalArgumentException.class, () -> node.restore(withRam, ram2)).getMessage());
        String t3 = sent(stateFile(2 << 20, false));
        assertThrows(IllegalArgumentException.class, () -> node.restore(t3, t3), "a file is no RAM");
        assertTrue(cloned.isEmpty() && made.isEmpty(), "nothing was restored");
    }

    @Test
    void atMostFourTransfersAtOnceAndADiscardedOneMakesRoom() {
        List<String> open = new ArrayList<>();
        for (int i = 0; i < NodeAdminService.MAX_TRANSFERS; i++) {
            open.add(i % 2 == 0 ? node.openTransfer(1) : node.openRam(4096));
        }
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> node.openTransfer(1));
        assertEquals("node b is receiving 4 VMs already; try again later", e.getMessage());
        assertThrows(IllegalStateException.class, () -> node.openRam(4096), "RAM counts with the files");
        node.discard("not-one-of-them");
        node.discard(null);
        assertThrows(IllegalStateException.class, () -> node.openTransfer(1), "an unknown id frees nothing");
        node.discard(open.get(1));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> node.receivePages(open.get(1), new long[] {0}, new byte[4096]))
                .getMessage().startsWith("node b has no incoming VM"), "discarded");
        node.openRam(4096);   // its place is free
    }

    @Test
    void aGuestIsOneOfTheKitsByNameAndVmsMadeForOthersAreBounded() {
        assertEquals("no request", assertThrows(IllegalArgumentException.class, () -> node.create(null)).getMessage());
        IllegalArgumentException none = assertThrows(IllegalArgumentException.class, () -> node.create(GuestRequest.of("nope", 2 << 20)));
        assertTrue(none.getMessage().startsWith("this node's guest kit has no guest 'nope'"), none.getMessage());
        assertEquals("'../hello' is not a guest kit name",
                assertThrows(IllegalArgumentException.class, () -> NodeAdminService.guest("../hello")).getMessage());

        VmSummary first = node.create(new GuestRequest("hello", 2 << 20, 7, Duration.ofSeconds(5)));
        assertEquals(new VmSummary("b", "vm-1", "hello", "created", 2 << 20, ""), first);
        VmProfile asked = (VmProfile) made.get("vm-1").spec();
        assertEquals(kit.resolve("hello.elf"), asked.image());
        assertEquals(7, asked.arg());
        assertEquals(Duration.ofSeconds(5), asked.timeout());
        assertEquals("console of vm-1", node.console("vm-1", 100));
        assertEquals("vm-1", node.console("vm-1", 4));
        assertEquals("", node.console("vm-1", 0));
        assertThrows(IllegalArgumentException.class, () -> node.console("vm-1", -1));
        assertThrows(IllegalArgumentException.class, () -> node.console("vm-1", NodeAdminService.MAX_CONSOLE_CHARS + 1));

        for (int i = 1; i < NodeAdminService.MAX_REMOTE_VMS; i++) {
            node.create(GuestRequest.of("hello", 2 << 20));
        }
        IllegalStateException full = assertThrows(IllegalStateException.class, () -> node.create(GuestRequest.of("hello", 2 << 20)));
        assertTrue(full.getMessage().startsWith("node b holds 64 VMs made by other nodes already"), full.getMessage());
        assertTrue(assertThrows(IllegalStateException.class, () -> node.openTransfer(1)).getMessage().contains("holds 64 VMs"),
                "nor can one come by migration");
        assertTrue(node.destroy("vm-1"));
        node.create(GuestRequest.of("hello", 2 << 20));   // a destroyed one makes room
        assertEquals(NodeAdminService.MAX_REMOTE_VMS, made.size());
    }

    @Test
    void thisNodesOwnVmsAreListedButOutOfReach() {
        made.put("vm-9", vm("vm-9", VmProfile.of(Path.of("own.elf"))));
        assertEquals(List.of("vm-9"), node.vms().stream().map(VmSummary::id).toList());
        String why = "node b has no VM vm-9 made by another node";
        assertEquals(why, assertThrows(IllegalArgumentException.class, () -> node.info("vm-9")).getMessage());
        assertEquals(why, assertThrows(IllegalArgumentException.class, () -> node.console("vm-9", 10)).getMessage());
        assertEquals(why, assertThrows(IllegalArgumentException.class, () -> node.start("vm-9")).getMessage());
        assertEquals(why, assertThrows(IllegalArgumentException.class, () -> node.destroy("vm-9")).getMessage());
        assertEquals(why, assertThrows(IllegalArgumentException.class, () -> node.migrate("vm-9", "c")).getMessage());
        assertTrue(made.containsKey("vm-9"), "still there");
        node.create(GuestRequest.of("hello", 2 << 20));
        String other = made.keySet().stream().filter(id -> !id.equals("vm-9")).findFirst().orElseThrow();
        made.remove(other);   // destroyed by this node's own vm:destroy
        assertEquals("node b has no VM " + other + " any more",
                assertThrows(IllegalArgumentException.class, () -> node.info(other)).getMessage());
    }
}
