package org.nxia.device.vmbus.internal;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.nxia.device.vmbus.internal.Vmbus.*;

import java.lang.foreign.MemorySegment;
import java.util.Map;
import java.util.Random;
import java.util.Set;

import org.nxia.vmm.api.device.DeviceConfig;
import org.nxia.vmm.spi.GuestMemory;
import org.nxia.vmm.spi.SynicHost;

/**
 * Drives a fresh VMBus server with what a hostile guest can do: channel messages built as Linux
 * builds them and then mutated (bytes flipped, cut short, run long), ring headers and data
 * overwritten, packets of random bytes, signals on any connection, SynIC pages moved anywhere.
 * The property: every hypercall returns a Hyper-V status the server may return, nothing throws,
 * and the outbox and GPADL table stay within their bounds. A case is one such input; a sequence
 * (one seed) is a fresh server and {@link #STEPS} inputs.
 */
final class VmbusFuzzer {

    static final int STEPS = 20;
    private static final Set<Long> STATUSES = Set.of(SynicHost.HV_STATUS_SUCCESS, SynicHost.HV_STATUS_INVALID_HYPERCALL_CODE,
            SynicHost.HV_STATUS_INVALID_HYPERCALL_INPUT, SynicHost.HV_STATUS_INVALID_ALIGNMENT, SynicHost.HV_STATUS_INVALID_PARAMETER,
            SynicHost.HV_STATUS_INVALID_CONNECTION_ID, SynicHost.HV_STATUS_INSUFFICIENT_BUFFERS);

    /** One factory for every sequence, as a running platform has one: its heartbeat thread is shared. */
    private final VmbusFactory factory = new VmbusFactory();
    private final GuestMemory memory = GuestMemory.of(0, MemorySegment.ofArray(new long[(int) GuestSide.RAM / 8]));
    long cases;
    long accepted;
    long refused;
    long opened;
    long broken;

    /** One sequence: a fresh server on cleared memory, {@link #STEPS} hostile inputs. */
    void run(long seed) {
        memory.slice(0, GuestSide.RAM).fill((byte) 0);
        Random r = new Random(seed);
        GuestSide guest = new GuestSide(2, true, memory);
        VmbusServer server = (VmbusServer) factory.create(new DeviceConfig("vmbus", Map.of()), guest);
        try {
            if (r.nextInt(8) != 0) {
                guest.enableMessagePages();
                linux(r, guest, r.nextInt(7));
            }
            for (int step = 0; step < STEPS; step++) {
                step(r, guest, server);
                cases++;
                VmbusServer.State state = (VmbusServer.State) server.state();
                assertTrue(state.pending() <= VmbusServer.MAX_PENDING, "seed " + seed + ": outbox " + state.pending());
            }
            for (String c : ((VmbusServer.State) server.state()).channels()) {
                opened += c.contains(" open, ") ? 1 : 0;
                broken += c.contains(" closed (") ? 1 : 0;
            }
        } catch (RuntimeException | AssertionError e) {
            throw new AssertionError("seed " + seed + " (add it to src/test/resources/vmbus-corpus/fuzz-seeds.txt): " + e, e);
        } finally {
            server.close();
        }
    }

    /** The first {@code steps} of what Linux does, unmutated, so that the inputs after meet open channels too. */
    private void linux(Random r, GuestSide guest, int steps) {
        byte[][] script = {GuestSide.contact(VERSION_5_3, 0, MESSAGE_SINT), GuestSide.header(REQUESTOFFERS),
                GuestSide.gpadlHeader(1, 1, guest.ringPages(1)), GuestSide.open(1, 1, 0, 4),
                GuestSide.gpadlHeader(2, 2, guest.ringPages(2)), GuestSide.open(2, 2, 0, 4)};
        for (int i = 0; i < Math.min(steps, script.length); i++) {
            status(guest.post(i == 0 ? CONTACT_CONNECTION_ID : MESSAGE_CONNECTION_ID, HVMSG_VMBUS, script[i]));
            for (int n = 0; n < 4 && guest.message(0) != null; n++) {
                guest.nextMessage(0);
            }
        }
    }

    private void step(Random r, GuestSide guest, VmbusServer server) {
        switch (r.nextInt(12)) {
            case 0, 1, 2, 3, 4 -> post(r, guest, mutate(r, message(r, guest)));
            case 5 -> {
                if (guest.message(0) != null) {
                    guest.endOfMessage(0);
                }
            }
            case 6 -> {   // overwrite a ring header field or a data word of either channel
                long page = GuestSide.RINGS + (r.nextInt(2) + 1) * 8L * PAGE + r.nextInt(8) * PAGE;
                int at = r.nextBoolean() ? r.nextInt(5) * 4 : r.nextInt((int) PAGE / 4) * 4;
                memory.writeInt(page + at, r.nextInt(4) == 0 ? r.nextInt() : r.nextInt(4 * (int) PAGE));
                status(guest.host.hypercall(0, SynicHost.HVCALL_SIGNAL_EVENT | FAST, Channel.CONNECTION_BASE + 1 + r.nextInt(2), 0));
            }
            case 7 -> {   // a packet of random bytes on an open channel's ring, framed or not
                int relid = r.nextInt(2) + 1;
                byte[] payload = new byte[r.nextInt(IntegrationService.MAX_PACKET + 64)];
                r.nextBytes(payload);
                if (payload.length > IntegrationService.IC_DATA && r.nextBoolean()) {
                    payload[IntegrationService.IC_FLAGS] = IntegrationService.FLAG_TRANSACTION | IntegrationService.FLAG_RESPONSE;
                }
                try {
                    new GuestSide.GuestChannel(guest, relid).send(payload, r.nextLong());
                } catch (Ring.Malformed ringBrokenAlready) {
                    // the fuzzer's own write found a ring it broke itself: the host sees the same
                    status(guest.host.hypercall(0, SynicHost.HVCALL_SIGNAL_EVENT | FAST, Channel.CONNECTION_BASE + relid, 0));
                }
            }
            case 8 -> status(guest.host.hypercall(r.nextInt(3) - 1, r.nextLong(), r.nextLong(), r.nextLong()));
            case 9 -> guest.host.synicChanged(r.nextInt(3), r.nextLong(), r.nextBoolean() ? r.nextLong() : GuestSide.SIEFP | 1,
                    r.nextBoolean() ? r.nextLong() : GuestSide.SIMP | 1);
            case 10 -> server.requestShutdown();
            default -> server.heartbeat.beat();
        }
    }

    private void post(Random r, GuestSide guest, byte[] payload) {
        int connection = r.nextInt(8) == 0 ? r.nextInt() : r.nextBoolean() ? MESSAGE_CONNECTION_ID : CONTACT_CONNECTION_ID;
        int type = r.nextInt(16) == 0 ? r.nextInt() : HVMSG_VMBUS;
        long status;
        if (payload.length > MAX_PAYLOAD) {
            memory.writeInt(GuestSide.INPUT + POST_SIZE, payload.length);
            status = guest.host.hypercall(0, SynicHost.HVCALL_POST_MESSAGE, GuestSide.INPUT, 0);
        } else {
            status = guest.post(connection, type, payload);
        }
        status(status);
        if (status == SynicHost.HV_STATUS_SUCCESS) {
            accepted++;
        } else {
            refused++;
        }
    }

    private static void status(long status) {
        assertTrue(STATUSES.contains(status), "status 0x" + Long.toHexString(status));
    }

    /** A message as Linux would send it, with random fields where Linux has choices. */
    private static byte[] message(Random r, GuestSide guest) {
        int relid = r.nextInt(4);
        return switch (r.nextInt(10)) {
            case 0 -> GuestSide.contact(r.nextInt(4) == 0 ? r.nextInt() : VERSION_5_0 + r.nextInt(5), r.nextInt(3), MESSAGE_SINT);
            case 1 -> GuestSide.header(REQUESTOFFERS);
            case 2 -> {
                long[] pages = guest.ringPages(Math.max(relid, 1));
                yield GuestSide.gpadlHeader(relid, r.nextInt(4), java.util.Arrays.copyOf(pages, r.nextInt(9)));
            }
            case 3 -> {
                byte[] body = new byte[GPADL_BODY_PFNS + 8 * r.nextInt(28)];
                putInt(body, 0, GPADL_BODY);
                putInt(body, MESSAGE_GPADL, r.nextInt(4));
                for (int at = GPADL_BODY_PFNS; at < body.length; at += 8) {
                    GuestSide.putLong(body, at, (GuestSide.RINGS >> 12) + r.nextInt(64));
                }
                yield body;
            }
            case 4 -> GuestSide.open(relid, r.nextInt(4), r.nextInt(3), r.nextInt(9));
            case 5 -> GuestSide.relidMessage(CLOSECHANNEL, relid, 0);
            case 6 -> GuestSide.relidMessage(GPADL_TEARDOWN, relid, r.nextInt(4));
            case 7 -> GuestSide.relidMessage(MODIFYCHANNEL, relid, r.nextInt(3));
            case 8 -> GuestSide.header(r.nextBoolean() ? UNLOAD : RELID_RELEASED);
            default -> {
                byte[] any = new byte[r.nextInt(MAX_PAYLOAD + 1)];
                r.nextBytes(any);
                yield any;
            }
        };
    }

    /** Most messages go as built; the rest get bytes flipped, or are cut short, or run long. */
    private static byte[] mutate(Random r, byte[] m) {
        switch (r.nextInt(6)) {
            case 0 -> {
                for (int i = r.nextInt(4); i >= 0 && m.length > 0; i--) {
                    m[r.nextInt(m.length)] ^= (byte) (1 << r.nextInt(8));
                }
                return m;
            }
            case 1 -> {
                return java.util.Arrays.copyOf(m, r.nextInt(m.length + 1));
            }
            case 2 -> {
                return java.util.Arrays.copyOf(m, m.length + r.nextInt(MAX_PAYLOAD + 8 - Math.min(m.length, MAX_PAYLOAD)));
            }
            default -> {
                return m;
            }
        }
    }
}
