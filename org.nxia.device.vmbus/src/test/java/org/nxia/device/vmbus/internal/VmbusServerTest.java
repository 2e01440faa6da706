package org.nxia.device.vmbus.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.nxia.device.vmbus.internal.Vmbus.*;
import static org.nxia.vmm.spi.SynicHost.*;

import java.util.List;
import java.util.Map;
import java.util.Random;

import org.junit.jupiter.api.Test;
import org.nxia.vmm.api.device.DeviceConfig;

/** The VMBus server against a guest that acts as Linux's hv_vmbus does, and against a hostile one. */
class VmbusServerTest {

    private final GuestSide guest = new GuestSide(2, true);
    private final VmbusServer server = (VmbusServer) new VmbusFactory().create(new DeviceConfig("vmbus", Map.of()), guest);

    private VmbusServer.State state() {
        return (VmbusServer.State) server.state();
    }

    private byte[] connect(int version) {
        assertEquals(HV_STATUS_SUCCESS, guest.post(CONTACT_CONNECTION_ID, HVMSG_VMBUS, GuestSide.contact(version, 0, MESSAGE_SINT)));
        byte[] response = guest.message(0);
        assertNotNull(response, "an answer in SINT 2's slot of VP 0");
        guest.endOfMessage(0);
        return response;
    }

    @Test
    void linuxConnectsAt53AndIsOfferedTheThreeIntegrationServices() {
        guest.enableMessagePages();
        byte[] response = connect(VERSION_5_3);
        assertEquals(RESPONSE_BYTES, response.length);
        assertEquals(VERSION_RESPONSE, intAt(response, 0));
        assertEquals(1, response[RESPONSE_SUPPORTED], "5.3 is taken");
        assertEquals(MESSAGE_CONNECTION_ID, intAt(response, RESPONSE_CONNECTION_ID), "where the guest posts from now on");
        assertEquals(1, guest.sint(0).signals.get(), "SINT 2 of VP 0 raised once");
        assertEquals(MESSAGE_SINT, guest.sint(0).sint());
        assertEquals("5.3", state().version());

        assertEquals(HV_STATUS_SUCCESS, guest.post(MESSAGE_CONNECTION_ID, HVMSG_VMBUS, GuestSide.header(REQUESTOFFERS)));
        byte[] shutdown = guest.nextMessage(0);
        assertEquals(OFFER_BYTES, shutdown.length);
        assertEquals(OFFERCHANNEL, intAt(shutdown, 0));
        assertEquals("31600b0e13523449818b38d90ced39db", java.util.HexFormat.of().formatHex(shutdown, OFFER_TYPE, OFFER_TYPE + 16),
                "the shutdown service's type, as Windows lays out a GUID");
        assertEquals(1, intAt(shutdown, OFFER_RELID));
        assertEquals(Channel.CONNECTION_BASE + 1, intAt(shutdown, OFFER_CONNECTION_ID));
        assertEquals(0, shutdown[OFFER_MONITOR_ALLOCATED], "no monitor pages");
        assertEquals(1, shutdown[OFFER_DEDICATED_INTERRUPT]);
        byte[] heartbeat = guest.nextMessage(0);
        assertEquals("394f16571591784eab55382f3bd5422d", java.util.HexFormat.of().formatHex(heartbeat, OFFER_TYPE, OFFER_TYPE + 16));
        assertEquals(2, intAt(heartbeat, OFFER_RELID));
        assertTrue(!java.util.Arrays.equals(shutdown, OFFER_INSTANCE, OFFER_INSTANCE + 16, heartbeat, OFFER_INSTANCE, OFFER_INSTANCE + 16),
                "each channel its own instance");
        byte[] timeSync = guest.nextMessage(0);
        assertEquals("30e62795aed07b49adcee80ab0175caf", java.util.HexFormat.of().formatHex(timeSync, OFFER_TYPE, OFFER_TYPE + 16));
        assertEquals(3, intAt(timeSync, OFFER_RELID));
        byte[] delivered = guest.nextMessage(0);
        assertEquals(HEADER_BYTES, delivered.length);
        assertEquals(ALLOFFERS_DELIVERED, intAt(delivered, 0));
        assertEquals(5, state().delivered());
        assertEquals(0, state().dropped());
        assertEquals(List.of("1 offered, shutdown: closed, 0 requested, 0 accepted, last status 0x0, 0 failures",
                "2 offered, heartbeat: closed, 0 beats, 0 failures", "3 offered, timesync: closed, 0 sent, 0 answered, 0 failures"),
                state().channels());
    }

    @Test
    void versionsOutsideFiveZeroToFiveThreeAreRefusedAndTheGuestTriesLower() {
        guest.enableMessagePages();
        assertEquals(0, connect(0x5_0004)[RESPONSE_SUPPORTED], "a version from the future");
        assertEquals("none", state().version());
        assertEquals(0, connect(0x4_0001)[RESPONSE_SUPPORTED], "4.1: before 5.0 the guest names no SINT");
        assertEquals(1, connect(0x5_0002)[RESPONSE_SUPPORTED]);
        assertEquals("5.2", state().version());
        assertEquals(1, connect(VERSION_5_0)[RESPONSE_SUPPORTED], "a contact while connected starts again, as after kexec");
        assertEquals("5.0", state().version());
    }

    @Test
    void aVersionWithMessagesOnAnotherSintIsRefused() {
        guest.enableMessagePages();
        guest.post(CONTACT_CONNECTION_ID, HVMSG_VMBUS, GuestSide.contact(VERSION_5_3, 0, 3));
        assertEquals(0, guest.message(0)[RESPONSE_SUPPORTED]);
        assertEquals("none", state().version());
    }

    @Test
    void theAnswerGoesToTheVpTheGuestNames() {
        guest.enableMessagePages();
        guest.post(CONTACT_CONNECTION_ID, HVMSG_VMBUS, GuestSide.contact(VERSION_5_3, 1, MESSAGE_SINT));
        assertNull(guest.message(0));
        assertEquals(VERSION_RESPONSE, intAt(guest.message(1), 0));
        assertEquals(1, guest.sint(1).signals.get());
        assertEquals(1, state().messageVp());
    }

    @Test
    void unloadIsAnsweredAndDisconnects() {
        guest.enableMessagePages();
        connect(VERSION_5_3);
        guest.post(MESSAGE_CONNECTION_ID, HVMSG_VMBUS, GuestSide.header(UNLOAD));
        assertEquals(UNLOAD_RESPONSE, intAt(guest.message(0), 0));
        assertEquals("none", state().version());
        guest.endOfMessage(0);
        guest.post(MESSAGE_CONNECTION_ID, HVMSG_VMBUS, GuestSide.header(REQUESTOFFERS));
        assertNull(guest.message(0), "no offers to a guest that unloaded");
        assertEquals(1, state().dropped());
    }

    @Test
    void anAnswerWaitsForAMessagePageTheGuestHasNotTurnedOn() {
        guest.post(CONTACT_CONNECTION_ID, HVMSG_VMBUS, GuestSide.contact(VERSION_5_3, 0, MESSAGE_SINT));
        assertEquals(1, state().pending());
        assertNull(guest.message(0));
        guest.enableMessagePages();
        assertEquals(VERSION_RESPONSE, intAt(guest.message(0), 0));
        assertEquals(0, state().pending());
    }

    @Test
    void aBusySlotIsFlaggedAndTheNextAnswerFollowsTheGuestsEndOfMessage() throws Exception {
        guest.enableMessagePages();
        guest.post(CONTACT_CONNECTION_ID, HVMSG_VMBUS, GuestSide.contact(VERSION_5_3, 0, MESSAGE_SINT));
        // the guest has not read the answer yet when it posts again (another CPU did)
        guest.post(MESSAGE_CONNECTION_ID, HVMSG_VMBUS, GuestSide.header(REQUESTOFFERS));
        assertEquals(VERSION_RESPONSE, intAt(guest.message(0), 0), "the first answer stays until the guest frees it");
        assertTrue(guest.pendingFlag(0), "the slot is flagged: another message waits");
        assertEquals(4, state().pending(), "three offers and the end of them");
        guest.endOfMessage(0);
        // the ack thread delivers the next answer, and flags the slot again for the two after it
        long deadline = System.nanoTime() + 10_000_000_000L;
        while ((guest.message(0) == null || !guest.pendingFlag(0)) && System.nanoTime() < deadline) {
            Thread.sleep(5);
        }
        assertEquals(OFFERCHANNEL, intAt(guest.message(0), 0), "delivered by the ack thread");
        assertTrue(guest.pendingFlag(0), "three more wait");
        assertEquals(1, state().acks());
        assertEquals(3, state().pending());
        for (int type : new int[] {OFFERCHANNEL, OFFERCHANNEL, OFFERCHANNEL, ALLOFFERS_DELIVERED}) {
            assertEquals(type, intAt(guest.nextMessage(0), 0));
        }
        assertEquals(0, state().pending());
        assertEquals(4, state().acks());
    }

    @Test
    void aGuestThatNeverFreesItsSlotIsToldToWaitNotQueuedWithoutEnd() {
        guest.enableMessagePages();
        connect(VERSION_5_3);
        // each request for offers has four answers (three offers and the end): the slot takes one, the outbox the rest
        for (int i = 0; i < 4; i++) {
            assertEquals(HV_STATUS_SUCCESS, guest.post(MESSAGE_CONNECTION_ID, HVMSG_VMBUS, GuestSide.header(REQUESTOFFERS)));
        }
        assertEquals(15, state().pending());
        assertEquals(HV_STATUS_INSUFFICIENT_BUFFERS, guest.post(MESSAGE_CONNECTION_ID, HVMSG_VMBUS, GuestSide.header(REQUESTOFFERS)),
                "no room for four more");
        assertEquals(1, state().refusedBusy());
        assertEquals(15, state().pending());
        assertTrue(state().pending() <= VmbusServer.MAX_PENDING);
    }

    @Test
    void hostileHypercallsGetAStatusAndChangeNothing() {
        guest.enableMessagePages();
        guest.memory.writeInt(GuestSide.INPUT + POST_CONNECTION_ID, CONTACT_CONNECTION_ID);
        guest.memory.writeInt(GuestSide.INPUT + POST_TYPE, HVMSG_VMBUS);
        guest.memory.writeInt(GuestSide.INPUT + POST_SIZE, CONTACT_BYTES);
        guest.memory.write(GuestSide.INPUT + POST_PAYLOAD, GuestSide.contact(VERSION_5_3, 0, MESSAGE_SINT));
        assertEquals(HV_STATUS_INVALID_ALIGNMENT, guest.host.hypercall(0, HVCALL_POST_MESSAGE, GuestSide.INPUT + 4, 0), "not 8-byte aligned");
        assertEquals(HV_STATUS_INVALID_ALIGNMENT, guest.host.hypercall(0, HVCALL_POST_MESSAGE, GuestSide.INPUT + PAGE - 8, 0), "crosses a page");
        assertEquals(HV_STATUS_INVALID_ALIGNMENT, guest.host.hypercall(0, HVCALL_POST_MESSAGE, GuestSide.INPUT + PAGE - POST_BYTES + 8, 0),
                "its last 8 bytes on the next page");
        assertEquals(HV_STATUS_INVALID_PARAMETER, guest.host.hypercall(0, HVCALL_POST_MESSAGE, GuestSide.RAM, 0), "past RAM");
        assertEquals(HV_STATUS_INVALID_PARAMETER, guest.host.hypercall(0, HVCALL_POST_MESSAGE, -PAGE, 0), "a negative address");
        assertEquals(HV_STATUS_INVALID_HYPERCALL_INPUT, guest.host.hypercall(0, HVCALL_POST_MESSAGE | FAST, GuestSide.INPUT, 0), "the fast form");
        assertEquals(HV_STATUS_INVALID_HYPERCALL_CODE, guest.host.hypercall(0, 0x5e, GuestSide.INPUT, 0));
        assertEquals(HV_STATUS_INVALID_CONNECTION_ID, guest.host.hypercall(0, HVCALL_SIGNAL_EVENT | FAST, 1, 0), "no channel: no event");
        assertEquals(HV_STATUS_INVALID_CONNECTION_ID, guest.post(7, HVMSG_VMBUS, GuestSide.contact(VERSION_5_3, 0, MESSAGE_SINT)));
        assertEquals(HV_STATUS_INVALID_CONNECTION_ID, guest.post(0x100_0007, HVMSG_VMBUS, GuestSide.contact(VERSION_5_3, 0, MESSAGE_SINT)),
                "the id is 24 bits");
        assertEquals(HV_STATUS_INVALID_PARAMETER, guest.post(CONTACT_CONNECTION_ID, 0, GuestSide.contact(VERSION_5_3, 0, MESSAGE_SINT)));
        assertEquals(HV_STATUS_INVALID_PARAMETER, guest.post(CONTACT_CONNECTION_ID, 0x8000_0000, GuestSide.contact(VERSION_5_3, 0, MESSAGE_SINT)),
                "the hypervisor's message types");
        assertEquals(HV_STATUS_INVALID_PARAMETER, guest.post(CONTACT_CONNECTION_ID, HVMSG_VMBUS, new byte[MAX_PAYLOAD + 1]));
        guest.memory.writeInt(GuestSide.INPUT + POST_SIZE, -1);
        assertEquals(HV_STATUS_INVALID_PARAMETER, guest.host.hypercall(0, HVCALL_POST_MESSAGE, GuestSide.INPUT, 0), "a negative size");
        assertEquals(List.of(0L, 0L, 0L), List.of(state().posted(), state().dropped(), state().delivered()), "nothing was taken");
        assertNull(guest.message(0));
    }

    @Test
    void anInputThatEndsWithItsPageIsTaken() {
        guest.enableMessagePages();
        long gpa = GuestSide.INPUT + PAGE - POST_BYTES;
        byte[] contact = GuestSide.contact(VERSION_5_3, 0, MESSAGE_SINT);
        guest.memory.writeInt(gpa + POST_CONNECTION_ID, CONTACT_CONNECTION_ID);
        guest.memory.writeInt(gpa + POST_TYPE, HVMSG_VMBUS);
        guest.memory.writeInt(gpa + POST_SIZE, contact.length);
        guest.memory.write(gpa + POST_PAYLOAD, contact);
        assertEquals(HV_STATUS_SUCCESS, guest.host.hypercall(0, HVCALL_POST_MESSAGE, gpa, 0));
        assertEquals(1, guest.message(0)[RESPONSE_SUPPORTED]);
        // a sender field the guest left dirty is cleared with the answer
        guest.memory.writeLong(guest.slot(0) + SLOT_SENDER, -1);
        guest.endOfMessage(0);
        guest.post(MESSAGE_CONNECTION_ID, HVMSG_VMBUS, GuestSide.header(REQUESTOFFERS));
        assertEquals(0L, guest.memory.readLong(guest.slot(0) + SLOT_SENDER));
    }

    @Test
    void malformedMessagesAreDroppedAndCounted() {
        guest.enableMessagePages();
        assertEquals(HV_STATUS_SUCCESS, guest.post(CONTACT_CONNECTION_ID, HVMSG_VMBUS, new byte[4]), "shorter than a header");
        assertEquals(HV_STATUS_SUCCESS, guest.post(CONTACT_CONNECTION_ID, HVMSG_VMBUS, java.util.Arrays.copyOf(
                GuestSide.contact(VERSION_5_3, 0, MESSAGE_SINT), CONTACT_BYTES - 1)), "a contact one byte short");
        guest.post(CONTACT_CONNECTION_ID, HVMSG_VMBUS, GuestSide.contact(VERSION_5_3, 2, MESSAGE_SINT));   // VP 2 of 2
        guest.post(CONTACT_CONNECTION_ID, HVMSG_VMBUS, GuestSide.contact(VERSION_5_3, -1, MESSAGE_SINT));
        guest.post(MESSAGE_CONNECTION_ID, HVMSG_VMBUS, GuestSide.header(REQUESTOFFERS));   // before contact
        guest.post(MESSAGE_CONNECTION_ID, HVMSG_VMBUS, GuestSide.header(UNLOAD));          // before contact
        guest.post(MESSAGE_CONNECTION_ID, HVMSG_VMBUS, GuestSide.header(99));
        guest.post(MESSAGE_CONNECTION_ID, HVMSG_VMBUS, GuestSide.header(VERSION_RESPONSE)); // the host's own
        assertEquals(List.of(8L, 8L, 0L), List.of(state().posted(), state().dropped(), state().delivered()));
        assertNull(guest.message(0));
        assertNull(guest.message(1));
    }

    @Test
    void aMessagePageOutsideRamDropsTheAnswer() {
        guest.host.synicChanged(0, 1, 0, GuestSide.RAM | 1);
        guest.host.synicChanged(5, 1, 0, GuestSide.SIMP | 1);   // a VP that does not exist: ignored
        guest.post(CONTACT_CONNECTION_ID, HVMSG_VMBUS, GuestSide.contact(VERSION_5_3, 0, MESSAGE_SINT));
        assertEquals(1, state().dropped());
        assertEquals(0, state().pending());
    }

    @Test
    void aSintTheHypervisorCannotRouteFailsTheVmWithTheReason() {
        guest.enableMessagePages();
        guest.interruptFailure = new UnsupportedOperationException("this KVM cannot route synthetic interrupts");
        guest.post(CONTACT_CONNECTION_ID, HVMSG_VMBUS, GuestSide.contact(VERSION_5_3, 0, MESSAGE_SINT));
        assertEquals("VMBus cannot raise SINT 2 of VP 0: this KVM cannot route synthetic interrupts", guest.failure);
        assertEquals(HV_STATUS_INVALID_CONNECTION_ID, guest.post(CONTACT_CONNECTION_ID, HVMSG_VMBUS, GuestSide.contact(VERSION_5_3, 0, MESSAGE_SINT)),
                "a failed server takes nothing more");
    }

    @Test
    void closingReleasesTheSintsAndTheirThreads() throws Exception {
        guest.enableMessagePages();
        connect(VERSION_5_3);
        server.close();
        assertTrue(guest.sint(0).closed);
        assertEquals(HV_STATUS_INVALID_CONNECTION_ID, guest.post(CONTACT_CONNECTION_ID, HVMSG_VMBUS, GuestSide.contact(VERSION_5_3, 0, MESSAGE_SINT)));
    }

    @Test
    void onlyAHyperVPartitionHasAVmbus() {
        GuestSide plain = new GuestSide(1, false);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new VmbusFactory().create(new DeviceConfig("vmbus", Map.of()), plain));
        assertEquals("device vmbus serves a Hyper-V partition's VMBus, and VM vm-test is not one (a Linux profile's hyperv=true)", e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> new VmbusFactory().create(new DeviceConfig("vmbus", Map.of("x", "1")), guest));
    }

    /** Random posts and SynIC writes: every call returns a status, none throws, the outbox stays bounded. */
    @Test
    void randomInputNeverThrowsAndStaysBounded() {
        Random random = new Random(17);
        for (int i = 0; i < 100_000; i++) {
            switch (random.nextInt(8)) {
                case 0 -> guest.host.synicChanged(random.nextInt(4) - 1, random.nextLong(), random.nextLong(),
                        random.nextBoolean() ? random.nextLong() : (GuestSide.SIMP | 1));
                case 1 -> guest.host.hypercall(random.nextInt(3) - 1, random.nextLong(), random.nextLong(), random.nextLong());
                case 2 -> guest.endOfMessage(0);
                default -> {
                    byte[] payload = new byte[random.nextInt(MAX_PAYLOAD + 1)];
                    random.nextBytes(payload);
                    if (payload.length >= HEADER_BYTES && random.nextBoolean()) {
                        putInt(payload, 0, random.nextInt(26));
                    }
                    if (payload.length >= CONTACT_BYTES && random.nextBoolean()) {
                        putInt(payload, CONTACT_TARGET_VP, random.nextInt(3));
                    }
                    long status = guest.post(random.nextBoolean() ? MESSAGE_CONNECTION_ID : random.nextInt(), random.nextInt(), payload);
                    assertTrue(status >= 0 && status <= HV_STATUS_INSUFFICIENT_BUFFERS, "status " + status);
                }
            }
            assertTrue(state().pending() <= VmbusServer.MAX_PENDING);
        }
    }
}
