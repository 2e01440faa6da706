package org.nxia.gemini.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.MemorySegment;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.nxia.gemini.api.CapabilityToken;
import org.nxia.gemini.api.ErrorCode;
import org.nxia.gemini.api.GeminiException;
import org.nxia.gemini.api.TokenInfo;
import org.nxia.gemini.testsvc.Hidden;
import org.nxia.portal.api.Ref;

/** Argument conversion, the callable surface of a service, and the token table, with known inputs. */
class ValuesTokensTest {

    private static Object convert(Object v, Class<?> type) {
        return Values.convert(v, type, "x.y argument 1", null);
    }

    private static GeminiException refused(Object v, Class<?> type) {
        GeminiException e = assertThrows(GeminiException.class, () -> convert(v, type), v + " to " + type);
        assertEquals(ErrorCode.BAD_ARGS, e.code());
        return e;
    }

    @Test
    void wireValuesConvertToParameterTypesOrAreBadArgs() {
        assertNull(convert(5L, void.class));
        assertNull(convert(5L, Void.class));
        assertEquals(5L, convert(5L, Object.class));
        assertNull(convert(null, String.class));
        assertNull(convert(null, Long.class));
        assertEquals("x.y argument 1: null for a long", refused(null, long.class).reason());
        assertEquals(5L, convert(5, long.class));
        assertEquals(5L, convert(5L, Long.class));
        refused("5", long.class);
        refused(1.0, long.class);
        assertEquals(7, convert(7L, int.class));
        assertEquals(7, convert(7, Integer.class));
        assertEquals(-7, convert(-7L, int.class));
        assertEquals(Integer.MIN_VALUE, convert((long) Integer.MIN_VALUE, int.class));
        assertEquals("x.y argument 1: i64:4294967296 is not a int", refused(1L << 32, int.class).reason());
        refused("7", int.class);
        refused(true, int.class);
        assertEquals(3.0, convert(3L, double.class));
        assertEquals(2.0, convert(2, Double.class));
        assertEquals(0.5, convert(0.5, double.class));
        refused("0.5", double.class);
        assertEquals(true, convert(true, boolean.class));
        assertEquals(false, convert(false, Boolean.class));
        refused(1L, boolean.class);
        assertEquals("s", convert("s", String.class));
        refused(5L, String.class);
        byte[] b = {1, 2};
        assertSame(b, convert(b, byte[].class));
        MemorySegment in = (MemorySegment) convert(b, MemorySegment.class);
        assertArrayEquals(b, in.toArray(java.lang.foreign.ValueLayout.JAVA_BYTE));
        assertTrue(in.isReadOnly(), "the callee cannot write the caller's bytes");
        Ref r = new Ref(1, 2, 3);
        assertSame(r, convert(r, Ref.class), "without a call context a reference stays a Ref");
        refused(r, byte[].class);
        CapabilityToken t = new CapabilityToken(1, 2);
        assertSame(t, convert(t, CapabilityToken.class));
        refused(t, String.class);
        refused(5L, Number.class);
        refused("s", CharSequence.class);
    }

    /** An interface extending the one a service is registered under. */
    public interface Twice extends SessionTest.Api {
    }

    public static final class Extended implements Twice {
        @Override
        public long twice(long x) {
            return 2 * x;
        }

        public long extra() {
            return 0;
        }
    }

    @Test
    void aServiceRegisteredUnderASuperinterfaceExportsThatInterfaceOnly() {
        Values.Exported e = Values.Exported.of(new Extended(), List.of(SessionTest.Api.class.getName()));
        assertEquals(List.of("twice"), e.names());
        assertEquals(List.of("extra", "twice"), Values.Exported.of(new Extended(), List.of()).names(), "no interface: its own methods");
    }

    @Test
    void invokeNamesTheArgumentItCouldNotConvertAndCallsNonPublicClasses() throws Exception {
        Values.Exported echo = Values.Exported.of(new SessionTest.Echo(), List.of());
        assertEquals(3L, Values.invoke(echo, "echo", "add", List.of(1L, 2L), null));
        GeminiException e = assertThrows(GeminiException.class, () -> Values.invoke(echo, "echo", "add", List.of(1L, "x"), null));
        assertEquals("echo.add argument 2: str:\"x\" is not a long", e.reason());
        assertEquals("echo.add takes no 1 arguments", assertThrows(GeminiException.class,
                () -> Values.invoke(echo, "echo", "add", List.of(1L), null)).reason());
        assertEquals(ErrorCode.NO_METHOD, assertThrows(GeminiException.class,
                () -> Values.invoke(echo, "echo", "sub", List.of(), null)).code());
        assertNull(Values.invoke(echo, "echo", "nothing", List.of(), null));
        Values.Exported hidden = Values.Exported.of(Hidden.service(), List.of());
        assertEquals(List.of("answer"), hidden.names());
        assertEquals(42L, Values.invoke(hidden, "hidden", "answer", List.of(), null), "a service class need not be public");
    }

    @Test
    void aTokensTextParsesBackToIt() {
        CapabilityToken t = new CapabilityToken(0x0102030405060708L, -2);
        assertEquals(t, CapabilityToken.parse(t.toString()));
        assertEquals("0807060504030201feffffffffffffff", t.toString(), "the 16 wire bytes, little-endian halves");
        assertEquals("a token is 32 hex digits, got 31 characters",
                assertThrows(IllegalArgumentException.class, () -> CapabilityToken.parse(t.toString().substring(1))).getMessage());
    }

    /** A clock the test moves. */
    private static final class Manual extends Clock {
        Instant now = Instant.parse("2026-01-01T00:00:00Z");

        @Override
        public ZoneOffset getZone() {
            return ZoneOffset.UTC;
        }

        @Override
        public Clock withZone(java.time.ZoneId zone) {
            return this;
        }

        @Override
        public Instant instant() {
            return now;
        }
    }

    @Test
    void tokensAreListedPerSessionInExpiryOrderAndRevokedOnlyByTheirOwner() {
        Manual clock = new Manual();
        Tokens tokens = new Tokens(clock);
        assertEquals(clock.now, tokens.now());
        CapabilityToken late = tokens.mint(0, "a", 1, Duration.ofMinutes(3));
        CapabilityToken early = tokens.mint(0, "a", 1, Duration.ofMinutes(1));
        CapabilityToken mid = tokens.mint(0, "a", 1, Duration.ofMinutes(2));
        CapabilityToken other = tokens.mint(1, "b", 2, Duration.ofMinutes(4));
        assertEquals(List.of(early, mid, late), tokens.of(0).stream().map(TokenInfo::token).toList(), "session 0 only, by expiry");
        assertEquals(List.of(other), tokens.of(1).stream().map(TokenInfo::token).toList());
        assertEquals(List.of(early, mid, late, other), tokens.of(-1).stream().map(TokenInfo::token).toList(), "all sessions");
        TokenInfo info = tokens.check(1, other);
        assertEquals(new TokenInfo(other, "b", 2, 1, clock.now.plus(Duration.ofMinutes(4)), false), info);

        assertFalse(tokens.revoke(0, other), "not its owner");
        assertFalse(tokens.revoke(0, new CapabilityToken(9, 9)), "unknown");
        assertTrue(tokens.revoke(0, mid));
        assertFalse(tokens.revoke(0, mid), "already revoked");
        assertTrue(tokens.of(0).get(1).revoked(), "a revoked token stays listed, marked");
        assertEquals("token " + mid + " was revoked", assertThrows(GeminiException.class, () -> tokens.check(0, mid)).reason());

        clock.now = clock.now.plus(Duration.ofMinutes(1));
        assertTrue(assertThrows(GeminiException.class, () -> tokens.check(0, early)).reason().contains("expired"), "at its expiry");
        tokens.check(0, late);

        tokens.revokeAll(0);
        assertEquals(List.of(), tokens.of(0));
        assertEquals(List.of(other), tokens.of(1).stream().map(TokenInfo::token).toList(), "another session's tokens stay");
        assertThrows(IllegalArgumentException.class, () -> tokens.mint(1, "b", 1, Duration.ZERO));
        assertThrows(IllegalArgumentException.class, () -> tokens.mint(1, "b", 1, Duration.ofSeconds(-1)));
    }

    @Test
    void aFullSessionMakesRoomFromItsSpentTokensOnly() {
        Manual clock = new Manual();
        Tokens tokens = new Tokens(clock);
        CapabilityToken foreign = tokens.mint(2, "a", 1, Duration.ofSeconds(1));
        for (int i = 0; i < Tokens.MAX_PER_SESSION - 1; i++) {
            tokens.mint(1, "a", 1, Duration.ofMinutes(10));
        }
        CapabilityToken brief = tokens.mint(1, "a", 1, Duration.ofSeconds(1));
        assertEquals(ErrorCode.BUSY, assertThrows(GeminiException.class, () -> tokens.mint(1, "a", 1, Duration.ofMinutes(10))).code());
        clock.now = clock.now.plusSeconds(1);
        tokens.mint(1, "a", 1, Duration.ofMinutes(10)); // the expired one made room
        assertTrue(tokens.of(1).stream().noneMatch(i -> i.token().equals(brief)));
        assertEquals(Tokens.MAX_PER_SESSION, tokens.of(1).size());
        assertEquals(List.of(foreign), tokens.of(2).stream().map(TokenInfo::token).toList(), "another session's expired token is not its to drop");
        assertEquals(ErrorCode.BUSY, assertThrows(GeminiException.class, () -> tokens.mint(1, "a", 1, Duration.ofMinutes(10))).code());
    }

    @Test
    void theReferenceThresholdComesFromItsPropertyOrIsRefused() {
        String was = System.getProperty(GeminiImpl.THRESHOLD_PROPERTY);
        try {
            for (Map.Entry<String, Long> c : Map.of("1234", 1234L, " 0 ", 0L, "", GeminiImpl.DEFAULT_REFERENCE_THRESHOLD,
                    " ", GeminiImpl.DEFAULT_REFERENCE_THRESHOLD).entrySet()) {
                System.setProperty(GeminiImpl.THRESHOLD_PROPERTY, c.getKey());
                GeminiImpl g = new GeminiImpl(new org.nxia.lsm.policy.internal.PolicyService(), Map.of(), Map.of());
                try {
                    LoopbackTransport[] w = LoopbackTransport.pair();
                    assertEquals(c.getValue(), g.openSession(w[0], "p", null).referenceThreshold(), "'" + c.getKey() + "'");
                } finally {
                    g.deactivate();
                }
            }
            for (String bad : List.of("-1", "lots", "1.5")) {
                System.setProperty(GeminiImpl.THRESHOLD_PROPERTY, bad);
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                        () -> new GeminiImpl(new org.nxia.lsm.policy.internal.PolicyService(), Map.of(), Map.of()));
                assertEquals(GeminiImpl.THRESHOLD_PROPERTY + "=" + bad + ": give a byte count >= 0", e.getMessage());
            }
        } finally {
            if (was == null) {
                System.clearProperty(GeminiImpl.THRESHOLD_PROPERTY);
            } else {
                System.setProperty(GeminiImpl.THRESHOLD_PROPERTY, was);
            }
        }
    }
}
