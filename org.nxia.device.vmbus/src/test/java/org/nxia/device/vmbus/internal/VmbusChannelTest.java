package org.nxia.device.vmbus.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.nxia.device.vmbus.internal.IntegrationService.*;
import static org.nxia.device.vmbus.internal.Vmbus.*;
import static org.nxia.vmm.spi.SynicHost.*;

import java.util.Map;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.nxia.vmm.api.device.DeviceConfig;

/**
 * The integration-service channels as Linux's hv_utils uses them: GPADL, open, negotiation, then the
 * service's requests and answers over the rings; and a guest that breaks the rules of each.
 */
class VmbusChannelTest {

    private static final int SHUTDOWN = 1;
    private static final int HEARTBEAT = 2;
    private static final int TIMESYNC = 3;

    private final GuestSide guest = new GuestSide(2, true);
    private final VmbusServer server = (VmbusServer) new VmbusFactory().create(new DeviceConfig("vmbus", Map.of()), guest);

    @BeforeEach
    void connect() {
        guest.enableMessagePages();
        guest.post(CONTACT_CONNECTION_ID, HVMSG_VMBUS, GuestSide.contact(VERSION_5_3, 0, MESSAGE_SINT));
        guest.nextMessage(0);
        guest.post(MESSAGE_CONNECTION_ID, HVMSG_VMBUS, GuestSide.header(REQUESTOFFERS));
        for (int i = 0; i < 4; i++) {
            guest.nextMessage(0);
        }
    }

    private VmbusServer.State state() {
        return (VmbusServer.State) server.state();
    }

    private int status(byte[] answer, int type, int statusAt) {
        assertEquals(type, intAt(answer, 0));
        return intAt(answer, statusAt);
    }

    /** GPADL and open as Linux does them; returns the guest's end of the channel. */
    private GuestSide.GuestChannel open(int relid, int gpadl) {
        long[] pages = guest.ringPages(relid);
        guest.post(MESSAGE_CONNECTION_ID, HVMSG_VMBUS, GuestSide.gpadlHeader(relid, gpadl, pages));
        byte[] created = guest.nextMessage(0);
        assertEquals(0, status(created, GPADL_CREATED, GPADL_CREATED_STATUS));
        assertEquals(relid, intAt(created, MESSAGE_RELID));
        assertEquals(gpadl, intAt(created, MESSAGE_GPADL));
        GuestSide.GuestChannel c = new GuestSide.GuestChannel(guest, relid, pages);
        guest.post(MESSAGE_CONNECTION_ID, HVMSG_VMBUS, GuestSide.open(relid, gpadl, 0, 4));
        byte[] result = guest.nextMessage(0);
        assertEquals(0, status(result, OPENCHANNEL_RESULT, OPEN_RESULT_STATUS));
        assertEquals(relid, intAt(result, MESSAGE_RELID));
        assertEquals(relid, intAt(result, OPEN_ID));
        return c;
    }

    /** Opens it and answers the host's negotiation as hv_utils does. */
    private GuestSide.GuestChannel negotiated(int relid, int gpadl) {
        GuestSide.GuestChannel c = open(relid, gpadl);
        assertTrue(guest.takeEvent(0, relid), "the host set the channel's event flag");
        byte[] negotiate = c.receive();
        assertNotNull(negotiate);
        assertEquals(NEGOTIATE, negotiate[IC_TYPE]);
        assertEquals(FLAG_TRANSACTION | FLAG_REQUEST, negotiate[IC_FLAGS]);
        assertEquals(1, negotiate[NEGOTIATE_FRAMEWORK_COUNT]);
        assertEquals(1, negotiate[NEGOTIATE_MESSAGE_COUNT]);
        assertEquals(version(3, 0), intAt(negotiate, NEGOTIATE_VERSIONS), "framework 3.0");
        assertEquals(version(3, 0), intAt(negotiate, NEGOTIATE_VERSIONS + 4), "message version 3.0");
        assertEquals(0, intAt(negotiate, PIPE_FLAGS));
        assertEquals(IC_DATA + 16 - 8, intAt(negotiate, PIPE_SIZE), "the pipe header counts what follows it (the ring pads the rest)");
        assertEquals(16, negotiate[IC_SIZE] | negotiate[IC_SIZE + 1] << 8, "two counts, reserved, two versions");
        assertEquals(version(1, 0), intAt(negotiate, IC_FRAMEWORK_VERSION));
        assertEquals(version(1, 0), intAt(negotiate, IC_MESSAGE_VERSION));
        assertEquals(0, intAt(negotiate, IC_STATUS));
        assertEquals(HV_STATUS_SUCCESS, c.answer(negotiate, 0));
        return c;
    }

    @Test
    void theHostAsksTheGuestToPowerOffThroughTheShutdownChannel() {
        assertFalse(server.requestShutdown(), "not before the guest opens the channel");
        GuestSide.GuestChannel c = negotiated(SHUTDOWN, 0xe1e10);
        assertTrue(state().channels().getFirst().startsWith("1 open, shutdown: framework 3.0, shutdown 3.0"), state().channels().toString());
        assertTrue(server.requestShutdown());
        assertFalse(server.requestShutdown(), "one request at a time");
        assertTrue(guest.takeEvent(0, SHUTDOWN));
        byte[] request = c.receive();
        assertEquals(ShutdownService.SHUTDOWN, request[IC_TYPE]);
        assertEquals(IC_DATA + ShutdownService.DATA_BYTES, request.length, "Linux takes a shutdown message of 2088 bytes or more");
        assertEquals(0, intAt(request, ShutdownService.FLAGS), "flags 0: power off");
        assertEquals(version(3, 0), intAt(request, IC_FRAMEWORK_VERSION));
        assertEquals(version(3, 0), intAt(request, IC_MESSAGE_VERSION));
        assertEquals(ShutdownService.DATA_BYTES, (request[IC_SIZE] & 0xff) | (request[IC_SIZE + 1] & 0xff) << 8);
        assertEquals(request.length - 8, intAt(request, PIPE_SIZE));
        assertEquals(2, request[IC_TRANSACTION], "the second request on this channel");
        assertEquals(2, c.packet.transaction, "the ring packet carries the same transaction");
        c.answer(request, 0);
        assertTrue(state().channels().getFirst().contains("1 requested, 1 accepted, last status 0x0, 0 failures"), state().channels().toString());
        assertTrue(guest.sint(0).signals.get() > 0);
    }

    @Test
    void heartbeatsAreCountedWhenTheGuestAnswersThemPlusOne() {
        GuestSide.GuestChannel c = negotiated(HEARTBEAT, 0xe1e11);
        byte[] first = c.receive();
        assertEquals(HeartbeatService.HEARTBEAT, first[IC_TYPE], "the first heartbeat follows the negotiation");
        assertEquals(2, longAt(first, IC_DATA), "sequence numbers start at 2 and go up by 2");
        assertEquals(version(3, 0), intAt(first, IC_MESSAGE_VERSION));
        assertEquals(HeartbeatService.DATA_BYTES, first[IC_SIZE]);
        c.answer(first, 0);
        assertEquals(1, server.heartbeat.beats());
        server.heartbeat.beat();
        byte[] second = c.receive();
        assertEquals(longAt(first, IC_DATA) + 2, longAt(second, IC_DATA), "a new sequence number each time");
        c.send(second, 7);   // a guest that echoes the request instead of answering it
        assertEquals(1, server.heartbeat.beats());
        assertTrue(state().channels().get(1).endsWith("1 beats, 1 failures"), state().channels().toString());
    }

    @Test
    void theHostSetsTheGuestsClockOnceTheTimeSyncChannelIsNegotiated() {
        long before = System.currentTimeMillis();
        GuestSide.GuestChannel c = negotiated(TIMESYNC, 0xe1e12);
        byte[] sample = c.receive();
        long after = System.currentTimeMillis();
        assertEquals(TimeSyncService.TIMESYNC, sample[IC_TYPE]);
        assertEquals(TimeSyncService.FLAG_SYNC, sample[TimeSyncService.FLAGS], "set the clock, not only note it");
        assertEquals(version(3, 0), intAt(sample, IC_MESSAGE_VERSION));
        assertEquals(TimeSyncService.DATA_BYTES, sample[IC_SIZE]);
        long unixMillis = (longAt(sample, TimeSyncService.PARENT_TIME) - TimeSyncService.WINDOWS_EPOCH_OFFSET) / 10_000;
        assertTrue(unixMillis >= before && unixMillis <= after, "the host's time in 100 ns since 1601: " + unixMillis);
        c.answer(sample, 0);
        assertTrue(state().channels().get(2).endsWith("1 sent, 1 answered, 0 failures"), state().channels().toString());
    }

    @Test
    void servicesCannotSendBeforeTheirChannelIsNegotiated() {
        assertFalse(server.timeSync.sync());
        assertFalse(server.requestShutdown());
        GuestSide.GuestChannel c = open(TIMESYNC, 1);
        assertFalse(server.timeSync.sync(), "negotiating");
        c.receive();
        assertEquals(0, server.heartbeat.beats());
    }

    @Test
    void theBoundsOfAGpadlAndAnOpenAreInclusive() {
        // 256 pages: the most; 26 page numbers in the header, the rest in bodies of 28
        long[] all = new long[VmbusServer.MAX_GPADL_PAGES];
        for (int i = 0; i < all.length; i++) {
            all[i] = i * PAGE;
        }
        byte[] header = GuestSide.gpadlHeader(SHUTDOWN, 1, java.util.Arrays.copyOf(all, 26));
        putInt(header, GPADL_BYTE_COUNT, all.length * (int) PAGE);
        guest.post(MESSAGE_CONNECTION_ID, HVMSG_VMBUS, header);
        for (int from = 26; from < all.length; from += 28) {
            int n = Math.min(28, all.length - from);
            byte[] body = new byte[GPADL_BODY_PFNS + 8 * n];
            putInt(body, 0, GPADL_BODY);
            putInt(body, MESSAGE_GPADL, 1);
            for (int i = 0; i < n; i++) {
                GuestSide.putLong(body, GPADL_BODY_PFNS + 8 * i, from + i);
            }
            guest.post(MESSAGE_CONNECTION_ID, HVMSG_VMBUS, body);
        }
        assertEquals(0, status(guest.nextMessage(0), GPADL_CREATED, GPADL_CREATED_STATUS), "256 pages");
        // 4 pages split 2 and 2, and 8 split 6 and 2: a header page and a data page each way
        long[] pages = guest.ringPages(SHUTDOWN);
        guest.post(MESSAGE_CONNECTION_ID, HVMSG_VMBUS, GuestSide.gpadlHeader(SHUTDOWN, 2, java.util.Arrays.copyOf(pages, 4)));
        assertEquals(0, status(guest.nextMessage(0), GPADL_CREATED, GPADL_CREATED_STATUS));
        guest.post(MESSAGE_CONNECTION_ID, HVMSG_VMBUS, GuestSide.open(SHUTDOWN, 2, 1, 2));
        assertEquals(0, status(guest.nextMessage(0), OPENCHANNEL_RESULT, OPEN_RESULT_STATUS));
        guest.post(MESSAGE_CONNECTION_ID, HVMSG_VMBUS, GuestSide.relidMessage(CLOSECHANNEL, SHUTDOWN, 0));
        guest.post(MESSAGE_CONNECTION_ID, HVMSG_VMBUS, GuestSide.gpadlHeader(SHUTDOWN, 3, pages));
        assertEquals(0, status(guest.nextMessage(0), GPADL_CREATED, GPADL_CREATED_STATUS));
        guest.post(MESSAGE_CONNECTION_ID, HVMSG_VMBUS, GuestSide.open(SHUTDOWN, 3, 0, 6));
        assertEquals(0, status(guest.nextMessage(0), OPENCHANNEL_RESULT, OPEN_RESULT_STATUS));
        assertTrue(guest.takeEvent(0, SHUTDOWN), "events to the VP the open named");
    }

    @Test
    void aGuestWithoutAnEventPageGetsNoEvents() {
        guest.host.synicChanged(0, 1, GuestSide.SIEFP, GuestSide.SIMP | 1);   // event page off
        int before = guest.sint(0).signals.get();
        open(SHUTDOWN, 1);
        assertFalse(guest.takeEvent(0, SHUTDOWN));
        assertEquals(before + 2, guest.sint(0).signals.get(), "the GPADL and open answers only: no event for the negotiation");
    }

    @Test
    void anUnloadForgetsTheGpadlsSoTheirIdsMayBeUsedAgain() {
        long[] pages = guest.ringPages(SHUTDOWN);
        guest.post(MESSAGE_CONNECTION_ID, HVMSG_VMBUS, GuestSide.gpadlHeader(SHUTDOWN, 1, pages));
        guest.nextMessage(0);
        guest.post(MESSAGE_CONNECTION_ID, HVMSG_VMBUS, GuestSide.header(UNLOAD));
        guest.nextMessage(0);
        connect();
        guest.post(MESSAGE_CONNECTION_ID, HVMSG_VMBUS, GuestSide.gpadlHeader(SHUTDOWN, 1, pages));
        assertEquals(0, status(guest.nextMessage(0), GPADL_CREATED, GPADL_CREATED_STATUS));
    }

    @Test
    void aGpadlThatBreaksARuleIsRefusedWithAStatus() {
        long[] pages = guest.ringPages(SHUTDOWN);
        byte[] twoRanges = GuestSide.gpadlHeader(SHUTDOWN, 1, pages);
        twoRanges[GPADL_RANGE_COUNT] = 2;
        byte[] offset = GuestSide.gpadlHeader(SHUTDOWN, 2, pages);
        putInt(offset, GPADL_BYTE_OFFSET, 8);
        long[] outside = pages.clone();
        outside[3] = GuestSide.RAM;
        long[] tooMany = new long[VmbusServer.MAX_GPADL_PAGES + 1];
        byte[] notWhole = GuestSide.gpadlHeader(SHUTDOWN, 5, pages);
        putInt(notWhole, GPADL_BYTE_COUNT, 8 * (int) PAGE - 1);
        for (byte[] bad : new byte[][] {twoRanges, offset, GuestSide.gpadlHeader(SHUTDOWN, 3, outside), GuestSide.gpadlHeader(SHUTDOWN, 4,
                java.util.Arrays.copyOf(tooMany, 26)), notWhole, GuestSide.gpadlHeader(9, 6, pages), GuestSide.gpadlHeader(SHUTDOWN, 7, new long[1])}) {
            if (bad == twoRanges || bad.length > 0) {
                putInt(bad, 0, GPADL_HEADER);
            }
        }
        byte[] tooManyPages = GuestSide.gpadlHeader(SHUTDOWN, 4, java.util.Arrays.copyOf(tooMany, 26));
        putInt(tooManyPages, GPADL_BYTE_COUNT, tooMany.length * (int) PAGE);
        for (byte[] bad : new byte[][] {twoRanges, offset, GuestSide.gpadlHeader(SHUTDOWN, 3, outside), tooManyPages, notWhole,
                GuestSide.gpadlHeader(9, 6, pages), GuestSide.gpadlHeader(SHUTDOWN, 7, new long[1])}) {
            guest.post(MESSAGE_CONNECTION_ID, HVMSG_VMBUS, bad);
            assertEquals(STATUS_REFUSED, status(guest.nextMessage(0), GPADL_CREATED, GPADL_CREATED_STATUS));
        }
        // a body for a GPADL nobody began is dropped; so is an open on a GPADL that was refused
        byte[] body = new byte[GPADL_BODY_PFNS + 8];
        putInt(body, 0, GPADL_BODY);
        putInt(body, MESSAGE_GPADL, 3);
        guest.post(MESSAGE_CONNECTION_ID, HVMSG_VMBUS, body);
        assertNull(guest.message(0));
        guest.post(MESSAGE_CONNECTION_ID, HVMSG_VMBUS, GuestSide.open(SHUTDOWN, 3, 0, 4));
        assertEquals(STATUS_REFUSED, status(guest.nextMessage(0), OPENCHANNEL_RESULT, OPEN_RESULT_STATUS));
        assertFalse(server.requestShutdown());
    }

    @Test
    void aGpadlsPagesMayFollowInBodies() {
        long[] pages = guest.ringPages(SHUTDOWN);
        byte[] header = GuestSide.gpadlHeader(SHUTDOWN, 9, java.util.Arrays.copyOf(pages, 3));
        putInt(header, GPADL_BYTE_COUNT, 8 * (int) PAGE);
        guest.post(MESSAGE_CONNECTION_ID, HVMSG_VMBUS, header);
        assertNull(guest.message(0), "3 pages of 8: not created yet");
        byte[] body = new byte[GPADL_BODY_PFNS + 5 * 8];
        putInt(body, 0, GPADL_BODY);
        putInt(body, MESSAGE_GPADL, 9);
        for (int i = 0; i < 5; i++) {
            GuestSide.putLong(body, GPADL_BODY_PFNS + 8 * i, pages[3 + i] / PAGE);
        }
        guest.post(MESSAGE_CONNECTION_ID, HVMSG_VMBUS, body);
        assertEquals(0, status(guest.nextMessage(0), GPADL_CREATED, GPADL_CREATED_STATUS));
        guest.post(MESSAGE_CONNECTION_ID, HVMSG_VMBUS, body);
        assertNull(guest.message(0), "a body past the last page is dropped");
    }

    @Test
    void anOpenThatBreaksARuleIsRefusedWithAStatus() {
        long[] pages = guest.ringPages(SHUTDOWN);
        guest.post(MESSAGE_CONNECTION_ID, HVMSG_VMBUS, GuestSide.gpadlHeader(SHUTDOWN, 1, pages));
        guest.nextMessage(0);
        for (byte[] bad : new byte[][] {GuestSide.open(SHUTDOWN, 1, 0, 1), GuestSide.open(SHUTDOWN, 1, 0, 7), GuestSide.open(SHUTDOWN, 1, 2, 4),
                GuestSide.open(SHUTDOWN, 2, 0, 4), GuestSide.open(HEARTBEAT, 1, 0, 4), GuestSide.open(3, 1, 0, 4)}) {
            guest.post(MESSAGE_CONNECTION_ID, HVMSG_VMBUS, bad);
            assertEquals(STATUS_REFUSED, status(guest.nextMessage(0), OPENCHANNEL_RESULT, OPEN_RESULT_STATUS));
        }
        guest.post(MESSAGE_CONNECTION_ID, HVMSG_VMBUS, GuestSide.open(SHUTDOWN, 1, 0, 4));
        assertEquals(0, status(guest.nextMessage(0), OPENCHANNEL_RESULT, OPEN_RESULT_STATUS));
        guest.post(MESSAGE_CONNECTION_ID, HVMSG_VMBUS, GuestSide.open(SHUTDOWN, 1, 0, 4));
        assertEquals(STATUS_REFUSED, status(guest.nextMessage(0), OPENCHANNEL_RESULT, OPEN_RESULT_STATUS), "open twice");
    }

    @Test
    void aBrokenRingClosesItsChannelAndNothingElse() {
        GuestSide.GuestChannel shutdown = negotiated(SHUTDOWN, 1);
        GuestSide.GuestChannel heartbeat = negotiated(HEARTBEAT, 2);
        long toHost = guest.ringPages(0)[0];   // page arithmetic only: where channel 1's pages start
        guest.memory.writeInt(GuestSide.RINGS + 8L * PAGE * SHUTDOWN + Ring.WRITE_INDEX, 3 * (int) PAGE + 8);   // past the data
        assertEquals(HV_STATUS_SUCCESS, guest.host.hypercall(0, HVCALL_SIGNAL_EVENT | FAST, Channel.CONNECTION_BASE + SHUTDOWN, 0));
        assertTrue(state().channels().getFirst().startsWith("1 closed (ring write index 12296"), state().channels().toString());
        assertFalse(server.requestShutdown());
        assertEquals(HV_STATUS_INVALID_CONNECTION_ID, guest.host.hypercall(0, HVCALL_SIGNAL_EVENT | FAST, Channel.CONNECTION_BASE + SHUTDOWN, 0));
        byte[] beat = heartbeat.receive();
        heartbeat.answer(beat, 0);
        assertEquals(1, server.heartbeat.beats(), "the other channel goes on");
        assertTrue(toHost >= 0);
        assertNotNull(shutdown);
    }

    @Test
    void aPacketLongerThanTheChannelTakesClosesIt() {
        GuestSide.GuestChannel c = negotiated(SHUTDOWN, 1);
        c.send(new byte[IntegrationService.MAX_PACKET + 8], 1);
        assertTrue(state().channels().getFirst().startsWith("1 closed (a packet of 4104 payload bytes"), state().channels().toString());
    }

    @Test
    void signalsForChannelsThatAreNotOpenAreRefused() {
        assertEquals(HV_STATUS_INVALID_CONNECTION_ID, guest.host.hypercall(0, HVCALL_SIGNAL_EVENT | FAST, Channel.CONNECTION_BASE + SHUTDOWN, 0));
        assertEquals(HV_STATUS_INVALID_CONNECTION_ID, guest.host.hypercall(0, HVCALL_SIGNAL_EVENT | FAST, Channel.CONNECTION_BASE + 3, 0));
        assertEquals(HV_STATUS_INVALID_CONNECTION_ID, guest.host.hypercall(0, HVCALL_SIGNAL_EVENT | FAST, 0, 0));
        negotiated(SHUTDOWN, 1);
        assertEquals(HV_STATUS_INVALID_CONNECTION_ID,
                guest.host.hypercall(0, HVCALL_SIGNAL_EVENT | FAST, (1L << 32) | (Channel.CONNECTION_BASE + SHUTDOWN), 0), "a flag number");
        assertEquals(HV_STATUS_SUCCESS, guest.host.hypercall(0, HVCALL_SIGNAL_EVENT | FAST, Channel.CONNECTION_BASE + SHUTDOWN, 0));
    }

    @Test
    void closeTeardownAndUnloadEndChannels() {
        negotiated(SHUTDOWN, 1);
        guest.post(MESSAGE_CONNECTION_ID, HVMSG_VMBUS, GuestSide.relidMessage(CLOSECHANNEL, SHUTDOWN, 0));
        assertFalse(server.requestShutdown(), "closed");
        guest.post(MESSAGE_CONNECTION_ID, HVMSG_VMBUS, GuestSide.relidMessage(GPADL_TEARDOWN, SHUTDOWN, 1));
        byte[] torn = guest.nextMessage(0);
        assertEquals(GPADL_TORNDOWN, intAt(torn, 0));
        assertEquals(1, intAt(torn, GPADL_TORNDOWN_GPADL));
        // opened again on a new GPADL, then torn down while open: the channel ends first
        negotiated(SHUTDOWN, 2);
        guest.post(MESSAGE_CONNECTION_ID, HVMSG_VMBUS, GuestSide.relidMessage(GPADL_TEARDOWN, SHUTDOWN, 2));
        assertEquals(GPADL_TORNDOWN, intAt(guest.nextMessage(0), 0));
        assertFalse(server.requestShutdown());
        negotiated(HEARTBEAT, 3);
        guest.post(MESSAGE_CONNECTION_ID, HVMSG_VMBUS, GuestSide.header(UNLOAD));
        assertEquals(UNLOAD_RESPONSE, intAt(guest.nextMessage(0), 0));
        assertTrue(state().channels().get(1).startsWith("2 offered, heartbeat: closed"), state().channels().toString());
    }

    @Test
    void aGuestMovesAChannelToAnotherVp() {
        negotiated(SHUTDOWN, 1);
        byte[] modify = GuestSide.relidMessage(MODIFYCHANNEL, SHUTDOWN, 1);
        guest.post(MESSAGE_CONNECTION_ID, HVMSG_VMBUS, modify);
        assertEquals(0, status(guest.nextMessage(0), MODIFYCHANNEL_RESPONSE, MODIFY_RESPONSE_STATUS));
        assertTrue(server.requestShutdown());
        assertTrue(guest.takeEvent(1, SHUTDOWN), "the event now goes to VP 1");
        assertEquals(1, guest.sint(1).signals.get());
        guest.post(MESSAGE_CONNECTION_ID, HVMSG_VMBUS, GuestSide.relidMessage(MODIFYCHANNEL, SHUTDOWN, 2));
        assertEquals(STATUS_REFUSED, status(guest.nextMessage(0), MODIFYCHANNEL_RESPONSE, MODIFY_RESPONSE_STATUS), "VP 2 of 2");
    }
}
