package org.nxia.control.api;

/**
 * How a program ended.
 *
 * @param signaled whether a signal killed it
 * @param code its exit status, or the signal's number
 */
public record ExitStatus(boolean signaled, int code) {

    public static ExitStatus exited(int status) {
        return new ExitStatus(false, status);
    }

    public static ExitStatus killed(int signal) {
        return new ExitStatus(true, signal);
    }

    @Override
    public String toString() {
        return signaled ? "killed by signal " + code : "exit " + code;
    }
}
