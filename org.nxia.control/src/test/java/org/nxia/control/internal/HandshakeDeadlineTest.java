package org.nxia.control.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.nxia.control.api.AgentSession;
import org.nxia.control.api.ControlException;
import org.nxia.control.api.ControlException.Code;
import org.nxia.control.api.ExitStatus;

/** The host's handshake against agents that accept and then say nothing, or too little. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class HandshakeDeadlineTest {

    @TempDir
    Path dir;

    /** Connects to a peer that accepts, reads, and answers {@code answer} (maybe nothing) and no more. */
    private SocketChannel silentPeer(ServerSocketChannel server, byte[] answer) throws IOException {
        SocketChannel ch = SocketChannel.open(server.getLocalAddress());
        SocketChannel peer = server.accept();
        peer.write(ByteBuffer.wrap(answer));
        return ch;
    }

    private void assertTimesOut(byte[] answer) throws IOException {
        try (ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX)
                .bind(UnixDomainSocketAddress.of(dir.resolve("silent")))) {
            SocketChannel ch = silentPeer(server, answer);
            long start = System.nanoTime();
            ControlException e = assertThrows(ControlException.class,
                    () -> AgentConnection.open(ch, AgentProcess.SECRET, Duration.ofMillis(300)));
            long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
            assertEquals(Code.SESSION, e.code());
            assertEquals("the agent did not complete the handshake within 300 ms", e.getMessage());
            assertTrue(ms >= 250 && ms < 5_000, ms + " ms");
            assertFalse(ch.isOpen());
        }
    }

    @Test
    void aPeerThatSaysNothingIsGivenUpAtTheDeadline() throws IOException {
        assertTimesOut(new byte[0]);
    }

    @Test
    void aPeerThatStopsInsideItsReplyIsGivenUpAtTheDeadline() throws IOException {
        byte[] reply = Wire.encode(Wire.HELLO_REPLY, 0, new byte[4 + Wire.NONCE + Wire.MAC]);
        assertTimesOut(java.util.Arrays.copyOf(reply, 30));
    }

    @Test
    void theDeadlineDoesNotOutliveASuccessfulHandshake() throws Exception {
        try (AgentProcess agent = new AgentProcess(dir);
             AgentSession s = AgentConnection.open(agent.channel(), AgentProcess.SECRET, Duration.ofMillis(300))) {
            Thread.sleep(600);
            assertEquals(ExitStatus.exited(0), s.exec("true").status());
        }
    }
}
