package org.nxia.vmm.internal.memhv;

import java.time.Duration;

/**
 * What a {@link ScriptedVcpu} does in {@code run}: its exits in order,
 * {@code rounds} times, then its ending. Arrays, so playing allocates nothing.
 */
public record Script(Exit[] exits, int rounds, Ending ending) {

    /** How long an ending that waits waits before it gives up (every wait has a deadline). */
    public static final Duration DEADLINE = Duration.ofSeconds(30);

    /** One exit to the VMM. */
    public sealed interface Exit {
    }

    public record PortWrite(int port, int size, int value) implements Exit {
    }

    public record PortRead(int port, int size) implements Exit {
    }

    public record MmioWrite(long address, int size, long value) implements Exit {
    }

    public record MmioRead(long address, int size) implements Exit {
    }

    /** How {@code run} ends once the exits are played (or when a stop was requested between two). */
    public sealed interface Ending {
    }

    /** Returns HALT. */
    public record Halt() implements Ending {
    }

    /** Returns SHUTDOWN (a triple fault) with {@code detail}. */
    public record Shutdown(String detail) implements Ending {
    }

    /** Stays in the guest until a stop is requested. */
    public record UntilStopped() implements Ending {
    }

    /** Stays in the guest, deaf to stop requests, until its thread is interrupted. */
    public record IgnoringStop() implements Ending {
    }

    /** Throws {@code thrown} out of {@code run}, as a host function's error would. */
    public record Throw(Throwable thrown) implements Ending {
    }

    public Script {
        if (rounds < 0) {
            throw new IllegalArgumentException("rounds " + rounds);
        }
        exits = exits.clone();
    }

    public static Script of(Ending ending, Exit... exits) {
        return new Script(exits, 1, ending);
    }

    public static Script repeat(int rounds, Ending ending, Exit... exits) {
        return new Script(exits, rounds, ending);
    }

    public static Script untilStopped() {
        return of(new UntilStopped());
    }
}
