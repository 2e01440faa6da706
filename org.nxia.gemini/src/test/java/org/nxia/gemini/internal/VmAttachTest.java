package org.nxia.gemini.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.management.ManagementFactory;
import java.lang.reflect.Proxy;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Hashtable;
import java.util.List;
import java.util.Map;
import java.util.Optional;

import org.junit.jupiter.api.Test;
import org.nxia.gemini.api.GeminiSession;
import org.nxia.lsm.policy.internal.PolicyService;
import org.nxia.portal.internal.SpscRing;
import org.nxia.vmm.spi.GuestMemory;
import org.nxia.vmm.api.HostCallContext;
import org.nxia.vmm.api.VirtualMachine;
import org.nxia.vmm.api.VmProfile;
import org.nxia.vmm.api.VmState;

/** The gemini host call against rings in a heap-free segment standing in for guest RAM. */
class VmAttachTest {
    static final Duration T = Duration.ofSeconds(5);
    static final int CAP = 4096;
    static final long G2H = 0x1000;
    static final long H2G = 0x4000;
    static final long CTL = 0x8000;

    private static int threads() {
        return ManagementFactory.getThreadMXBean().getThreadCount();
    }

    /** A guest that attaches, makes a call and closes, N times: the VM keeps one destroy action and nothing else. */
    @Test
    void attachAndCloseCyclesLeaveNothingBehind() throws Exception {
        PolicyService policy = new PolicyService();
        Hashtable<String, Object> config = new Hashtable<>();
        config.put("manifest", "profile attach\nallow out echo.*\n");
        policy.updated("m", config);
        GeminiImpl gemini = new GeminiImpl(policy, Map.of("echo", new SessionTest.Echo()), Map.of());
        VmAttach attach = new VmAttach(gemini, new org.nxia.portal.internal.Structures());
        VirtualMachine vm = (VirtualMachine) Proxy.newProxyInstance(getClass().getClassLoader(), new Class<?>[] {VirtualMachine.class},
                (p, m, a) -> switch (m.getName()) {
                    case "id" -> "vm-attach";
                    case "spec" -> VmProfile.of(Path.of("attach.elf")).withName("attach");
                    case "state" -> VmState.RUNNING;
                    case "result" -> Optional.empty();
                    default -> throw new UnsupportedOperationException(m.getName());
                });
        List<Runnable> destroyActions = new ArrayList<>();
        try (Arena arena = Arena.ofShared()) {
            MemorySegment ram = arena.allocate(0x10000, 4096);
            GuestMemory memory = GuestMemory.of(0, ram);
            HostCallContext context = new HostCallContext() {
                @Override
                public VirtualMachine vm() {
                    return vm;
                }

                @Override
                public GuestMemory memory() {
                    return memory;
                }

                @Override
                public void onDestroy(Runnable action) {
                    destroyActions.add(action);
                }
            };
            MemorySegment arg = arena.allocate(VmAttach.ATTACH_SIZE, 8);
            arg.set(ValueLayout.JAVA_INT, 0, VmAttach.MAGIC);
            arg.set(ValueLayout.JAVA_SHORT, 4, (short) VmAttach.VERSION);
            arg.set(ValueLayout.JAVA_SHORT, 6, (short) VmAttach.ATTACH);
            long size = SpscRing.requiredSize(CAP);
            arg.set(ValueLayout.JAVA_LONG, 8, G2H);
            arg.set(ValueLayout.JAVA_LONG, 16, size);
            arg.set(ValueLayout.JAVA_LONG, 24, H2G);
            arg.set(ValueLayout.JAVA_LONG, 32, size);
            arg.set(ValueLayout.JAVA_LONG, 40, CTL);
            int before = -1; // measured after the first cycle started the shared timer and the virtual-thread carriers
            int peak = 0;
            int cycles = 50;
            for (int i = 0; i < cycles; i++) {
                SpscRing.format(memory.slice(G2H, size), CAP);
                SpscRing.format(memory.slice(H2G, size), CAP);
                assertEquals(0, attach.call(context, arg, arena.allocate(8)));
                GeminiSession host = gemini.sessionOfVm("vm-attach").orElseThrow();
                Session guest = gemini.client(new RingTransport(SpscRing.attach(memory.slice(H2G, size)), SpscRing.attach(memory.slice(G2H, size)),
                        arena.allocate(64, 64), () -> null), new PeerHandler(), "cycle-" + i);
                assertEquals(3L, guest.call("echo", "add", T, 1L, 2L));
                peak = Math.max(peak, threads());
                guest.close("cycle " + i);
                // the next cycle re-formats the same rings: the host's CLOSE must be out before that
                assertTrue(((Session) host).awaitClosed(T), "the host session did not close");
                assertFalse(host.isOpen());
                if (i == 0) {
                    Thread.sleep(100);
                    before = threads();
                }
            }
            long end = System.nanoTime() + T.toNanos();
            while (threads() > before && System.nanoTime() < end) {
                Thread.sleep(10);
            }
            int after = threads();
            System.out.println(cycles + " ATTACH/CLOSE cycles: platform threads " + before + " -> peak " + peak + " -> " + after
                    + "; destroy actions " + destroyActions.size() + ", VMs held " + attach.attachedVms() + ", sessions "
                    + gemini.sessions().size());
            assertEquals(1, destroyActions.size(), "one destroy action per VM, not one per ATTACH");
            assertEquals(1, attach.attachedVms());
            assertEquals(0, gemini.sessions().size());
            assertTrue(after <= before, "threads back to baseline: " + before + " -> " + after);

            SpscRing.format(memory.slice(G2H, size), CAP);
            SpscRing.format(memory.slice(H2G, size), CAP);
            attach.call(context, arg, arena.allocate(8));
            GeminiSession last = gemini.sessionOfVm("vm-attach").orElseThrow();
            destroyActions.getFirst().run();
            assertFalse(last.isOpen(), "destroying the VM closes its open session");
            assertTrue(last.closeReason().contains("destroyed"), last.closeReason());
            assertEquals(0, attach.attachedVms(), "and drops the VM's entry");
        } finally {
            gemini.deactivate();
        }
    }
}
