package org.nxia.cluster.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.InvalidObjectException;
import java.io.ObjectInputStream;
import java.io.ObjectOutputStream;
import java.time.Duration;

import org.junit.jupiter.api.Test;
import org.nxia.cluster.api.GuestRequest;

class GuestRequestTest {

    @Test
    void aGuestIsAKitNameNeverAPath() {
        for (String bad : new String[] {"../../bin/sh", "/tmp/x.elf", "hello.elf", "", "Hello", "x".repeat(65)}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> GuestRequest.of(bad, 16 << 20), bad);
            assertTrue(e.getMessage().contains("not a guest kit name"), e.getMessage());
        }
        assertEquals("hello", GuestRequest.of("hello", 16 << 20).guest());
    }

    @Test
    void aRunLongerThanTheLimitIsRefused() {
        assertThrows(IllegalArgumentException.class, () -> new GuestRequest("hello", 16 << 20, 0, GuestRequest.MAX_TIMEOUT.plusSeconds(1)));
        assertThrows(IllegalArgumentException.class, () -> new GuestRequest("hello", 16 << 20, 0, Duration.ZERO));
    }

    /**
     * What arrives from another node is checked as a local call is: Java deserializes a record
     * through its constructor, so a stream that carries a path as the guest is refused on arrival.
     */
    @Test
    void aRequestForgedOnTheWireIsCheckedWhenItArrives() throws Exception {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (ObjectOutputStream out = new ObjectOutputStream(bytes)) {
            out.writeObject(GuestRequest.of("hellox", 16 << 20));
        }
        byte[] wire = bytes.toByteArray();
        // same length, so the stream stays well formed: "hellox" becomes "../sh/"
        String s = new String(wire, java.nio.charset.StandardCharsets.ISO_8859_1).replace("hellox", "../sh/");
        byte[] forged = s.getBytes(java.nio.charset.StandardCharsets.ISO_8859_1);
        try (ObjectInputStream in = new ObjectInputStream(new ByteArrayInputStream(forged))) {
            InvalidObjectException e = assertThrows(InvalidObjectException.class, in::readObject);
            assertTrue(e.getCause().getMessage().contains("not a guest kit name"), e.getCause().getMessage());
        }
    }
}
