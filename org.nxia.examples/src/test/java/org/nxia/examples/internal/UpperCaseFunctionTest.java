package org.nxia.examples.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;

import org.junit.jupiter.api.Test;

class UpperCaseFunctionTest {

    private final UpperCaseFunction upper = new UpperCaseFunction();

    /** Calls the function as a host call (HostFunction) does: argument and result segments; returns the result bytes. */
    private byte[] call(byte[] argument, int resultCapacity) {
        MemorySegment result = MemorySegment.ofArray(new byte[resultCapacity]);
        long n = upper.call(MemorySegment.ofArray(argument.clone()), result);
        return result.asSlice(0, n).toArray(ValueLayout.JAVA_BYTE);
    }

    @Test
    void upperCasesTheHostcallGuestsGreeting() {
        assertArrayEquals("HELLO FROM THE GUEST".getBytes(StandardCharsets.US_ASCII),
                call("hello from the guest".getBytes(StandardCharsets.US_ASCII), 256));
    }

    @Test
    void changesOnlyAsciiLowerCaseLettersEveryOtherByteAsIs() {
        byte[] all = new byte[256];
        for (int i = 0; i < 256; i++) {
            all[i] = (byte) i;
        }
        byte[] got = call(all, 256);
        for (int i = 0; i < 256; i++) {
            byte want = i >= 'a' && i <= 'z' ? (byte) (i - 32) : (byte) i;
            assertEquals(want, got[i], "byte " + i);
        }
    }

    @Test
    void answersNoMoreThanTheResultHolds() {
        assertArrayEquals("HEL".getBytes(StandardCharsets.US_ASCII), call("hello".getBytes(StandardCharsets.US_ASCII), 3));
        assertArrayEquals(new byte[0], call("hello".getBytes(StandardCharsets.US_ASCII), 0));
        assertArrayEquals(new byte[0], call(new byte[0], 16), "an empty argument is an empty answer");
    }

    @Test
    void leavesTheArgumentUntouched() {
        byte[] argument = "abc".getBytes(StandardCharsets.US_ASCII);
        MemorySegment segment = MemorySegment.ofArray(argument);
        upper.call(segment, MemorySegment.ofArray(new byte[8]));
        assertArrayEquals("abc".getBytes(StandardCharsets.US_ASCII), argument);
    }
}
